# The Redis TLS sidecar's image (deploy/k8s/overlays/production-redis-tls): Debian 12's stunnel4
# (5.68) on the same base as the gateway's runtime stage, so both get Debian's security updates
# the same way. Build from the repository root:
#   docker build -f deploy/stunnel.Dockerfile -t twilio-gateway-stunnel:5.68-2-deb12u1 .
# and pin it by digest in the overlay. ca-certificates is left out on purpose: stunnel trusts
# only the CA mounted from the Secret twilio-gateway-redis-ca (CAfile), not the public roots.
FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      stunnel4 \
    && rm -rf /var/lib/apt/lists/*
# No writable path needed (foreground, no pid file), so a read-only root file system works.
USER 10002:10002
EXPOSE 6380
ENTRYPOINT ["/usr/bin/stunnel4"]
CMD ["/etc/stunnel/conf/stunnel.conf"]
