/* startup: how long a command takes from fork to exit, for scripts/bench/run.
 *
 *   startup N CMD [ARG...] [:: CMD [ARG...]]...
 *
 * Runs each command N times, the commands taking turns (1 2 3 1 2 3 ...),
 * stdin from /dev/null and stdout/stderr discarded, and prints one line per
 * command, in order:
 *   median_ms min_ms max_ms median_maxrss_kb last_exit_status
 * Wall time is fork to the child's reaping (CLOCK_MONOTONIC); the peak RSS
 * is the child's ru_maxrss from wait4. Exit status 127 means exec failed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static int cmp_long(const void* a, const void* b) {
  long x = *(const long*)a, y = *(const long*)b;
  return x < y ? -1 : x > y;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char** argv) {
  int n = argc > 2 ? atoi(argv[1]) : 0;
  if (n < 1) {
    fprintf(stderr, "usage: startup N CMD [ARG...] [:: CMD [ARG...]]...\n");
    return 2;
  }
  /* Split argv[2..] at "::" into commands (argv is NULL-terminated). */
  char** cmds[64];
  int ncmds = 0;
  cmds[ncmds++] = &argv[2];
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "::") == 0) {
      argv[i] = NULL;
      if (ncmds == 64)
        return 2;
      cmds[ncmds++] = &argv[i + 1];
    }
  }
  double* ms = calloc((size_t)(ncmds * n), sizeof *ms);
  long* rss = calloc((size_t)(ncmds * n), sizeof *rss);
  int* status = calloc((size_t)ncmds, sizeof *status);
  if (!ms || !rss || !status)
    return 1;

  for (int round = 0; round < n; round++) {
    for (int c = 0; c < ncmds; c++) {
      if (!cmds[c][0]) {
        status[c] = 127;
        continue;
      }
      double t0 = now_ms();
      pid_t pid = fork();
      if (pid < 0) {
        perror("startup: fork");
        return 1;
      }
      if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execvp(cmds[c][0], cmds[c]);
        _exit(127);
      }
      int st;
      struct rusage ru;
      if (wait4(pid, &st, 0, &ru) < 0) {
        perror("startup: wait4");
        return 1;
      }
      ms[c * n + round] = now_ms() - t0;
      rss[c * n + round] = ru.ru_maxrss;
      status[c] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
  }
  for (int c = 0; c < ncmds; c++) {
    double* m = ms + c * n;
    long* r = rss + c * n;
    qsort(m, (size_t)n, sizeof *m, cmp_double);
    qsort(r, (size_t)n, sizeof *r, cmp_long);
    double med = n % 2 ? m[n / 2] : (m[n / 2 - 1] + m[n / 2]) / 2;
    long rmed = n % 2 ? r[n / 2] : (r[n / 2 - 1] + r[n / 2]) / 2;
    printf("%.2f %.2f %.2f %ld %d\n", med, m[0], m[n - 1], rmed, status[c]);
  }
  return 0;
}
