# tessera in a container: one static binary on an empty base image.
#
#   docker build -t tessera .
#   docker run -p 9000:9000 -v tessera-data:/data \
#     -e TESSERA_ROOT_USER=admin -e TESSERA_ROOT_PASSWORD=change-me-please tessera
#
# The same image runs a storage node (`node /data`) or a gateway on etcd and nodes; see
# deploy/compose.yaml and deploy/kubernetes/.

# --- build: Debian, as the scripts expect, and the project's own static build ---
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN scripts/build-static > /tmp/binary-path \
 && mkdir -p /out/data \
 && cp "$(tail -n 1 /tmp/binary-path)" /out/tessera \
 && chown 65532:65532 /out/data

# --- run: nothing but the binary and its data directory ---
FROM scratch
COPY --from=build /out/tessera /tessera
COPY --from=build --chown=65532:65532 /out/data /data
# Not root: a numeric user, since the image has no /etc/passwd.
USER 65532:65532
VOLUME /data
EXPOSE 9000 9100
HEALTHCHECK --interval=10s --timeout=6s --start-period=20s --retries=3 \
  CMD ["/tessera", "health"]
ENTRYPOINT ["/tessera"]
CMD ["serve", "/data"]
