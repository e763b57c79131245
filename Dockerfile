# One image for every Copydesk process (deploy/k8s picks the binary with `command`):
# copydesk-ingress, copydesk-{knowledge,drafter,notes,assigner,lifecycle,deadletter} and the
# copydesk ops CLI. The sample knowledge base is at /app/knowledge (COPYDESK_KNOWLEDGE_DIR).
#   docker build -t copydesk:0.1.0 .
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p copydesk-ingress -p copydesk-workers

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 copydesk
COPY --from=build /src/target/release/copydesk-ingress \
                  /src/target/release/copydesk-knowledge \
                  /src/target/release/copydesk-drafter \
                  /src/target/release/copydesk-notes \
                  /src/target/release/copydesk-assigner \
                  /src/target/release/copydesk-lifecycle \
                  /src/target/release/copydesk-deadletter \
                  /src/target/release/copydesk \
                  /usr/local/bin/
COPY knowledge /app/knowledge
COPY deploy/routing.example.toml /etc/copydesk/routing.toml
USER copydesk
EXPOSE 8080 8081 9090
