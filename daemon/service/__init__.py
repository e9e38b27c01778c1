"""The ZeroMQ service: the wire (protocol, link, endpoints, locks), the daemon and its client."""
