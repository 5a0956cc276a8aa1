# syntax=docker/dockerfile:1
# The allot server image: a static binary (no cgo) on a distroless base,
# run as a non-root user. Build it from the repository root:
#   docker build -t allot .
# docs/OPERATIONS.md ("Containers") shows how to run it.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Only ./cmd/allot goes into the image; nothing it imports needs cgo
# (examples/sqlite-consumer does, and is not built here).
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/allot ./cmd/allot \
	&& mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/allot /usr/local/bin/allot
COPY --from=build --chown=65532:65532 /out/data /var/lib/allot
USER 65532:65532
# Serve on every interface; a node of a cluster also needs ALLOT_RAFT_ADDR
# (0.0.0.0:7000) and ALLOT_ADVERTISE_HOST, the name the others reach it at.
ENV ALLOT_DATA_DIR=/var/lib/allot \
	ALLOT_HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080 7000
VOLUME ["/var/lib/allot"]
# No shell or curl in the image: the binary probes itself.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
	CMD ["/usr/local/bin/allot", "health"]
ENTRYPOINT ["/usr/local/bin/allot"]
CMD ["serve"]
