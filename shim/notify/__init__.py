"""sd_notify: the socket proxied into the container, the rules for what may reach the
host's systemd (``protocol``, pure), and the sockets that move the datagrams."""
