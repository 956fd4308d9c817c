/* threadhello: the other concurrency model, for scripts/bench/run only.
 *
 *   threadhello PORT [HOST]      (HOST default 127.0.0.1)
 *
 * One connection, one thread: a blocking accept() loop hands each new
 * connection to a detached pthread with the default attributes (its stack
 * is `ulimit -s`, 8 MiB on Debian), which reads and writes with blocking
 * calls until the peer closes. It speaks just enough HTTP/1.1 to be
 * benchmarked beside the others: every request (head up to CRLFCRLF, a
 * Content-Length body skipped) gets "Hello, World!\n"; keep-alive unless
 * the request says `Connection: close` or is HTTP/1.0 without keep-alive;
 * pipelined requests are answered in order, one write per read. No
 * chunked request bodies (400 and close). Not part of luvhost.
 *
 * Built by scripts/bench/run: cc -O2 -pthread -o threadhello threadhello.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE 8192
#define BODY "Hello, World!\n"

/* The Date header, formatted at most once a second per thread. */
struct date_cache {
  time_t second;
  char text[40];
};

static void date_now(struct date_cache* d) {
  time_t now = time(NULL);
  if (now != d->second) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(d->text, sizeof d->text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    d->second = now;
  }
}

static int write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* The value of header NAME (lower case) in the head [p, end), or NULL;
 * *len is its length. The head's first line is skipped. */
static const char* header(const char* p, const char* end, const char* name,
                          size_t* len) {
  size_t nlen = strlen(name);
  const char* line = memchr(p, '\n', (size_t)(end - p));
  while (line && ++line < end) {
    const char* eol = memchr(line, '\n', (size_t)(end - line));
    if (!eol)
      eol = end;
    if ((size_t)(eol - line) > nlen && line[nlen] == ':' &&
        strncasecmp(line, name, nlen) == 0) {
      const char* v = line + nlen + 1;
      while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
      const char* e = eol;
      while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
        e--;
      *len = (size_t)(e - v);
      return v;
    }
    line = eol;
  }
  return NULL;
}

static int has_token(const char* v, size_t len, const char* token) {
  size_t tlen = strlen(token);
  for (size_t i = 0; i + tlen <= len; i++)
    if (strncasecmp(v + i, token, tlen) == 0)
      return 1;
  return 0;
}

/* Appends one response to out; returns its length. */
static size_t respond(char* out, size_t room, struct date_cache* d, int status,
                      int close_after) {
  date_now(d);
  int n = snprintf(out, room,
                   "HTTP/1.1 %s\r\nServer: threadhello\r\nDate: %s\r\n"
                   "Content-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s",
                   status == 200 ? "200 OK" : "400 Bad Request", d->text,
                   status == 200 ? (int)strlen(BODY) : 0,
                   close_after ? "Connection: close\r\n" : "",
                   status == 200 ? BODY : "");
  return n > 0 && (size_t)n < room ? (size_t)n : 0;
}

static void* serve(void* arg) {
  int fd = (int)(long)arg;
  char in[BUF_SIZE], out[BUF_SIZE];
  size_t have = 0; /* bytes in `in` */
  size_t skip = 0; /* body bytes still to discard */
  int closing = 0;
  struct date_cache date = {0, ""};

  while (!closing) {
    ssize_t r = read(fd, in + have, sizeof in - have);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    have += (size_t)r;
    size_t pos = 0, outlen = 0;
    while (!closing) {
      if (skip > 0) {
        size_t k = have - pos < skip ? have - pos : skip;
        pos += k;
        skip -= k;
        if (skip > 0)
          break;
      }
      char* head = in + pos;
      char* end = memmem(head, have - pos, "\r\n\r\n", 4);
      if (!end)
        break;
      end += 4;
      size_t vlen = 0;
      const char* v;
      int status = 200;
      int http10 =
          memmem(head, (size_t)(end - head), " HTTP/1.0\r\n", 11) != NULL;
      v = header(head, end, "connection", &vlen);
      if (v ? has_token(v, vlen, "close") : 0)
        closing = 1;
      if (http10 && !(v && has_token(v, vlen, "keep-alive")))
        closing = 1;
      if (header(head, end, "transfer-encoding", &vlen)) {
        status = 400;
        closing = 1;
      }
      v = header(head, end, "content-length", &vlen);
      if (v)
        skip = strtoul(v, NULL, 10);
      pos = (size_t)(end - in);
      if (sizeof out - outlen < 512) { /* flush a long pipeline */
        if (write_all(fd, out, outlen) < 0)
          goto done;
        outlen = 0;
      }
      outlen +=
          respond(out + outlen, sizeof out - outlen, &date, status, closing);
    }
    if (outlen > 0 && write_all(fd, out, outlen) < 0)
      break;
    memmove(in, in + pos, have - pos);
    have -= pos;
    if (have == sizeof in) { /* a head larger than the buffer */
      outlen = respond(out, sizeof out, &date, 400, 1);
      write_all(fd, out, outlen);
      break;
    }
  }
done:
  close(fd);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: threadhello PORT [HOST]\n");
    return 2;
  }
  const char* host = argc > 2 ? argv[2] : "127.0.0.1";
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(argv[1]))};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    fprintf(stderr, "threadhello: bad IPv4 address %s\n", host);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr*)&addr, sizeof addr) < 0 ||
      listen(lfd, 4096) < 0) {
    perror("threadhello: bind/listen");
    return 1;
  }
  printf("listening on http://%s:%s/\n", host, argv[1]);
  fflush(stdout);

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
        perror("threadhello: accept");
        usleep(10000);
      }
      continue;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_t t;
    int err = pthread_create(&t, &attr, serve, (void*)(long)fd);
    if (err) {
      fprintf(stderr, "threadhello: pthread_create: %s\n", strerror(err));
      close(fd);
    }
  }
}
