"""The kubelet: pod workers over CRI, node registration and heartbeat."""

from k3py.agent.kubelet.node import NodeAgent
from k3py.agent.kubelet.pods import Kubelet

__all__ = ["Kubelet", "NodeAgent"]
