// Node's http hello world, the reference of scripts/bench/run. It listens on
// HOST:PORT from the environment (default 127.0.0.1:8080).
'use strict';
const http = require('http');

const port = Number(process.env.PORT) || 8080;
const host = process.env.HOST || '127.0.0.1';

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end('Hello, World!\n');
});
// Node closes idle keep-alive connections after 5 s; the idle-connection
// test needs them held, as examples/hello.lua does (65 s).
server.keepAliveTimeout = 65000;
server.headersTimeout = 66000;
server.listen(port, host, () => {
  console.log(`listening on http://${host}:${server.address().port}/`);
});
