/* uv.constants: the numbers luv scripts use with fs, sockets and signals. */
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "lh_bind.h"

#define K(name) \
  { #name, name }

typedef struct {
  const char* name;
  lua_Integer value;
} constant_t;

static const constant_t constants[] = {
    K(O_RDONLY),
    K(O_WRONLY),
    K(O_RDWR),
    K(O_APPEND),
    K(O_CREAT),
    K(O_DSYNC),
    K(O_EXCL),
    K(O_NOCTTY),
    K(O_NONBLOCK),
    K(O_RSYNC),
    K(O_SYNC),
    K(O_TRUNC),
    K(O_NOFOLLOW),
    K(O_DIRECTORY),
#ifdef O_NOATIME
    K(O_NOATIME),
#endif
#ifdef O_DIRECT
    K(O_DIRECT),
#endif
    K(S_IFMT),
    K(S_IFREG),
    K(S_IFDIR),
    K(S_IFCHR),
    K(S_IFBLK),
    K(S_IFIFO),
    K(S_IFLNK),
    K(S_IFSOCK),
    K(AF_UNIX),
    K(AF_INET),
    K(AF_INET6),
    K(AF_UNSPEC),
    K(AI_ADDRCONFIG),
    K(AI_V4MAPPED),
    K(AI_ALL),
    K(AI_NUMERICHOST),
    K(AI_PASSIVE),
    K(AI_NUMERICSERV),
    K(AI_CANONNAME),
    K(SOCK_STREAM),
    K(SOCK_DGRAM),
    K(SOCK_SEQPACKET),
    K(SOCK_RAW),
    K(SOCK_RDM),
    K(IPPROTO_TCP),
    K(IPPROTO_UDP),
    K(IPPROTO_IP),
    K(IPPROTO_IPV6),
    K(SIGHUP),
    K(SIGINT),
    K(SIGQUIT),
    K(SIGILL),
    K(SIGTRAP),
    K(SIGABRT),
    K(SIGBUS),
    K(SIGFPE),
    K(SIGKILL),
    K(SIGUSR1),
    K(SIGSEGV),
    K(SIGUSR2),
    K(SIGPIPE),
    K(SIGALRM),
    K(SIGTERM),
    K(SIGCHLD),
    K(SIGSTKFLT),
    K(SIGCONT),
    K(SIGSTOP),
    K(SIGTSTP),
    K(SIGTTIN),
    K(SIGTTOU),
    K(SIGURG),
    K(SIGXCPU),
    K(SIGXFSZ),
    K(SIGVTALRM),
    K(SIGPROF),
    K(SIGWINCH),
    K(SIGIO),
    K(SIGPWR),
    K(SIGSYS),
    {"UDP_RECVMMSG", UV_UDP_RECVMMSG},
    {"UDP_REUSEADDR", UV_UDP_REUSEADDR},
    {"UDP_IPV6ONLY", UV_UDP_IPV6ONLY},
    {"TCP_IPV6ONLY", UV_TCP_IPV6ONLY},
    {"FS_COPYFILE_EXCL", UV_FS_COPYFILE_EXCL},
    {"FS_COPYFILE_FICLONE", UV_FS_COPYFILE_FICLONE},
    {"FS_COPYFILE_FICLONE_FORCE", UV_FS_COPYFILE_FICLONE_FORCE},
    {"FS_SYMLINK_DIR", UV_FS_SYMLINK_DIR},
    {"FS_SYMLINK_JUNCTION", UV_FS_SYMLINK_JUNCTION},
    {"TTY_MODE_NORMAL", UV_TTY_MODE_NORMAL},
    {"TTY_MODE_RAW", UV_TTY_MODE_RAW},
    {"TTY_MODE_IO", UV_TTY_MODE_IO},
    {"TTY_MODE_RAW_VT", 3},
    {NULL, 0},
};

void lh_open_constants(lua_State* L) {
  const constant_t* c;
  lua_newtable(L);
  for (c = constants; c->name != NULL; c++) {
    lua_pushinteger(L, c->value);
    lua_setfield(L, -2, c->name);
  }
  lua_setfield(L, -2, "constants");
}
