# luvhost in a container. `docker build -t luvhost .` on any machine with
# Docker; `make image` / `make image-test` here (scripts/image, podman).
#
#   docker run -p 8080:8080 luvhost                    # examples/hello.lua
#   docker run -p 8080:8080 luvhost /app/conformance.lua
#   docker run -p 8080:8080 -v "$PWD/app.lua:/app/app.lua:ro" luvhost /app/app.lua

# Build stage: the compiler and -dev packages, listed once in
# scripts/install-deps (--build leaves out the test-only tools).
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY scripts/install-deps scripts/install-deps
RUN scripts/install-deps --build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make -j"$(nproc)" && make install PREFIX=/usr/local

# Runtime stage: the binary and the shared libraries it links, nothing else.
FROM debian:bookworm-slim
# One Debian package per library in `objdump -p luvhost | grep NEEDED`
# (libc6 is in the base); the check below names any that is missing.
ARG RUNTIME_PACKAGES="liblua5.4-0 libuv1"
RUN apt-get update \
 && apt-get install -y --no-install-recommends $RUNTIME_PACKAGES \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --user-group --uid 10001 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin luvhost
COPY --from=build /usr/local/bin/luvhost /usr/local/bin/luvhost
RUN if ldd /usr/local/bin/luvhost | grep 'not found'; then \
      echo 'add the packages of these libraries to RUNTIME_PACKAGES' >&2; \
      exit 1; \
    fi \
 && luvhost -v
COPY examples/ /app/

WORKDIR /app
USER luvhost
# examples/*.lua listen on HOST:PORT.
ENV HOST=0.0.0.0 PORT=8080
EXPOSE 8080
# luvhost's own HTTP client: no curl in the image. Any answer below 500
# counts, so an app without a route for / is healthy too.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["luvhost", "-e", "local r = require('http').get('http://127.0.0.1:' .. (process.env.PORT or 8080) .. '/', { timeout = 3000, agent = false }) os.exit(r and r.statusCode < 500 and 0 or 1)"]
ENTRYPOINT ["luvhost"]
CMD ["/app/hello.lua"]
