/* As PID 1 (in a container), orphans of other processes become our
 * children and stay zombies unless someone waits for them. On SIGCHLD we
 * wait for those; our own children (uv process handles) are left to
 * libuv, which waits for each of them by pid. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime.h"

static uv_signal_t chld;

typedef struct {
  int pid;
  int found;
} pid_search_t;

static void find_process(uv_handle_t* handle, void* arg) {
  pid_search_t* s = arg;
  if (handle->type == UV_PROCESS &&
      uv_process_get_pid((uv_process_t*)handle) == s->pid)
    s->found = 1;
}

/* A zombie whose parent is us, from /proc/PID/stat. */
static int is_our_zombie(int pid) {
  char path[64], buf[512];
  FILE* f;
  size_t n;
  char* end;
  char state;
  int ppid;
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  f = fopen(path, "r");
  if (f == NULL)
    return 0;
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  end = strrchr(buf, ')'); /* the command may hold spaces and parens */
  if (end == NULL || sscanf(end + 1, " %c %d", &state, &ppid) != 2)
    return 0;
  return state == 'Z' && ppid == 1;
}

static void reap_orphans(uv_signal_t* handle, int signum) {
  DIR* dir = opendir("/proc");
  struct dirent* e;
  (void)signum;
  if (dir == NULL)
    return;
  while ((e = readdir(dir)) != NULL) {
    pid_search_t s;
    if (!isdigit((unsigned char)e->d_name[0]))
      continue;
    s.pid = atoi(e->d_name);
    s.found = 0;
    if (s.pid <= 1 || !is_our_zombie(s.pid))
      continue;
    uv_walk(handle->loop, find_process, &s);
    if (!s.found)
      waitpid(s.pid, NULL, WNOHANG);
  }
  closedir(dir);
}

void lh_reaper_init(uv_loop_t* loop) {
  if (getpid() != 1)
    return;
  if (uv_signal_init(loop, &chld) != 0)
    return;
  if (uv_signal_start(&chld, reap_orphans, SIGCHLD) != 0) {
    uv_close((uv_handle_t*)&chld, NULL);
    return;
  }
  uv_unref((uv_handle_t*)&chld);
}
