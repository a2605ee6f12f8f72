"""k3py: a Kubernetes-compatible cluster in one Python process per machine."""

__version__ = "0.1.0"
KUBE_VERSION = "v1.32.4"
GIT_VERSION = f"{KUBE_VERSION}+k3py{__version__}"
