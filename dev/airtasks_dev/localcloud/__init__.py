"""The local cloud: moto's EC2 instances as real Swarm nodes on this machine (see README.md here).

`network.Network` (bridge, namespaces), `node.Node` (one instance's machine), `runner.NodeRunner`
(moto instances -> nodes), `registry.Registry` (images for the nodes). Importable without pytest.
"""
