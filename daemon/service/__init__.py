"""The ZeroMQ service: the wire (protocol, link, endpoints), the daemon and its client."""
