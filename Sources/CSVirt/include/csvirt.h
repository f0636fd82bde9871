#ifndef CSVIRT_H
#define CSVIRT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

// Thin wrappers over Linux calls that Swift cannot reach: <sys/xattr.h> is not in Glibc's Swift module, and
// variadic functions (syscall, prctl, ioctl) cannot be called from Swift. Each returns what the C call returns
// (-1 with errno set on failure) unless said otherwise. Nothing here keeps state.

// Extended attributes. `follow` = 0 acts on a symlink itself (the l* calls).
ssize_t svirt_getxattr(const char *path, const char *name, void *value, size_t size, int follow);
int svirt_setxattr(const char *path, const char *name, const void *value, size_t size, int flags, int follow);
int svirt_removexattr(const char *path, const char *name, int follow);
ssize_t svirt_listxattr(const char *path, char *list, size_t size, int follow);
ssize_t svirt_fgetxattr(int fd, const char *name, void *value, size_t size);
int svirt_fsetxattr(int fd, const char *name, const void *value, size_t size, int flags);
int svirt_fremovexattr(int fd, const char *name);
ssize_t svirt_flistxattr(int fd, char *list, size_t size);
// XATTR_CREATE / XATTR_REPLACE.
int svirt_xattr_create_flag(void);
int svirt_xattr_replace_flag(void);

// openat2(2) with struct open_how {flags, mode, resolve}. -1 with errno (ENOSYS before Linux 5.6).
int svirt_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, and O_PATH.
uint64_t svirt_resolve_no_symlinks(void);
int svirt_o_path(void);

// fstatfs(fd)->f_type: the filesystem's magic number, or -1 with errno.
long long svirt_fstatfs_type(int fd);

// fchownat(fd, "", uid, gid, AT_EMPTY_PATH): changes the owner of the file an O_PATH descriptor names.
int svirt_fchown_path_fd(int fd, unsigned int uid, unsigned int gid);

// name_to_handle_at(fd, "", ..., AT_EMPTY_PATH): the file handle of an open file (an O_PATH descriptor works), so
// the same inode can be opened again later whatever its path names by then. Writes at most `capacity` bytes of
// the handle to `handle`, its length to `*length`, its type to `*type` and the mount id to `*mount_id`.
int svirt_file_handle(int fd, unsigned char *handle, size_t capacity, size_t *length, int *type, int *mount_id);
// open_by_handle_at(mount_fd, handle, flags): opens the inode a handle names (needs CAP_DAC_READ_SEARCH).
int svirt_open_by_handle(int mount_fd, const unsigned char *handle, size_t length, int type, int flags);

// Landlock. The ABI version, or -1 with errno (ENOSYS: not built, EOPNOTSUPP: disabled at boot).
int svirt_landlock_abi_version(void);
int svirt_landlock_create_ruleset(const void *attr, size_t size, uint32_t flags);
int svirt_landlock_add_rule(int ruleset_fd, int rule_type, const void *rule_attr, uint32_t flags);
int svirt_landlock_restrict_self(int ruleset_fd, uint32_t flags);

// prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).
int svirt_set_no_new_privs(void);
// prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0).
int svirt_get_no_new_privs(void);

// ioctl(fd, KVM_GET_API_VERSION, 0): 12 on every kernel with a usable KVM.
int svirt_kvm_api_version(int fd);

// Opens `path` read-write as another user, the way the guest will: forks, and the child sets the groups, gid and
// uid, opens the path (and when `kvm` is nonzero asks KVM_GET_API_VERSION), then exits. Returns the API version
// (kvm), 0 (opened), or -errno of the step that failed. The child calls only async-signal-safe functions.
int svirt_open_as(const char *path, uid_t uid, gid_t gid, const gid_t *groups, size_t group_count, int kvm);

// Landlock's structures (linux/landlock.h), declared here because the system header may predate them.
// `svirt_landlock_ruleset_attr` grows with the ABI: pass only the size the running ABI knows
// (8 bytes up to ABI 3, 16 for ABI 4 and 5, 24 from ABI 6).
typedef struct svirt_landlock_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
} svirt_landlock_ruleset_attr;

typedef struct __attribute__((packed)) svirt_landlock_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} svirt_landlock_path_beneath_attr;

typedef struct svirt_landlock_net_port_attr {
    uint64_t allowed_access;
    uint64_t port;
} svirt_landlock_net_port_attr;

// landlock_add_rule rule types.
#define SVIRT_LANDLOCK_RULE_PATH_BENEATH 1
#define SVIRT_LANDLOCK_RULE_NET_PORT 2

// open(path, O_PATH | O_CLOEXEC): a descriptor that names a file without opening it for I/O.
int svirt_open_path(const char *path);

// Adds a path-beneath rule: `parent_fd` is an O_PATH descriptor of a file or directory.
int svirt_landlock_add_path_rule(int ruleset_fd, uint64_t allowed_access, int parent_fd);
// Adds a TCP port rule.
int svirt_landlock_add_port_rule(int ruleset_fd, uint64_t allowed_access, uint64_t port);

// ---- The fork-to-exec spawn -------------------------------------------------------------------------------
//
// svirt_spawn forks. With a `spawned` callback the child first waits for the parent: the callback gets the pid
// (to record it where another process finds it) and, once it returns 0, the child goes on; when it returns
// nonzero, or the parent dies before it returns (the child reads end-of-file), the child exits with 127 and
// nothing is executed. So no program runs that the caller has not recorded. Then the child applies, in this
// order, each step the request asks for, and execve()s:
//   1. reset signal dispositions to default and unblock all signals;
//   2. setsid() (new_session);
//   3. write exec_context to <procroot>/thread-self/attr/exec;
//   4. write sockcreate_context to <procroot>/thread-self/attr/sockcreate;
//   5. create each listening unix socket (socket, bind, listen) under that socket-create context;
//   6. setgroups(), setresgid(), setresuid() (change_ids);
//   7. chdir(cwd);
//   8. prctl(PR_SET_NO_NEW_PRIVS), except for an SELinux transition (exec_context set, no Landlock ruleset);
//   9. landlock_restrict_self(landlock_ruleset_fd) when it is >= 0;
//  10. place file descriptors: each mapping's source at its target, each listener at its target;
//  11. close every other descriptor;
//  12. execve(path, argv, envp).
// A failing step is reported to the parent over a CLOEXEC pipe (the step and errno) and the child exits with
// 127. svirt_spawn returns 0 with result->pid set once the child has exec'd, or -1 with result->step and
// result->error set (and the child reaped). The child calls only async-signal-safe functions and allocates
// nothing.

enum {
    SVIRT_SPAWN_STEP_NONE = 0,
    SVIRT_SPAWN_STEP_REQUEST = 1,       // the request is invalid (parent side)
    SVIRT_SPAWN_STEP_PIPE = 2,          // pipe2 (parent side)
    SVIRT_SPAWN_STEP_FORK = 3,          // fork (parent side)
    SVIRT_SPAWN_STEP_SIGNALS = 4,
    SVIRT_SPAWN_STEP_SETSID = 5,
    SVIRT_SPAWN_STEP_EXEC_CONTEXT = 6,
    SVIRT_SPAWN_STEP_SOCKCREATE_CONTEXT = 7,
    SVIRT_SPAWN_STEP_LISTENER = 8,
    SVIRT_SPAWN_STEP_SETGROUPS = 9,
    SVIRT_SPAWN_STEP_SETGID = 10,
    SVIRT_SPAWN_STEP_SETUID = 11,
    SVIRT_SPAWN_STEP_CHDIR = 12,
    SVIRT_SPAWN_STEP_NO_NEW_PRIVS = 13,
    SVIRT_SPAWN_STEP_LANDLOCK = 14,
    SVIRT_SPAWN_STEP_FDS = 15,
    SVIRT_SPAWN_STEP_CLOSE_FDS = 16,
    SVIRT_SPAWN_STEP_EXEC = 17,
    SVIRT_SPAWN_STEP_SPAWNED = 18,      // the spawned callback refused (parent side; error: what it returned)
};

// The most descriptors (mappings plus listeners) a child can be given.
#define SVIRT_SPAWN_MAX_FDS 64

typedef struct svirt_fd_mapping {
    int source;  // a descriptor open in the parent
    int target;  // the number it gets in the child
} svirt_fd_mapping;

typedef struct svirt_listener {
    const char *path;  // the unix socket path to bind (at most 107 bytes)
    int target;        // the descriptor number it gets in the child
    int backlog;
} svirt_listener;

typedef struct svirt_spawn_request {
    const char *path;         // the executable
    char *const *argv;        // NULL-terminated
    char *const *envp;        // NULL-terminated
    const char *cwd;          // NULL: the parent's
    const char *procroot;     // NULL: "/proc"
    const char *exec_context;        // NULL: not written
    const char *sockcreate_context;  // NULL: not written
    const svirt_listener *listeners;
    size_t listener_count;
    int change_ids;           // nonzero: set groups, gid and uid
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    size_t group_count;
    int landlock_ruleset_fd;  // -1: no Landlock
    uint32_t landlock_flags;  // landlock_restrict_self flags
    const svirt_fd_mapping *fds;
    size_t fd_count;
    int new_session;          // nonzero: setsid()
    // NULL: none. Called in the parent with the child's pid before the child does anything; 0 lets it go on,
    // an errno cancels the spawn (the child exits unexecuted and is reaped).
    int (*spawned)(pid_t pid, void *context);
    void *spawned_context;
} svirt_spawn_request;

typedef struct svirt_spawn_result {
    pid_t pid;
    int step;
    int error;
} svirt_spawn_result;

int svirt_spawn(const svirt_spawn_request *request, svirt_spawn_result *result);

// pidfd_open(pid, 0): a descriptor for a process that stays valid after the pid is reused; it polls readable
// once the process has exited. -1 with errno (ENOSYS before Linux 5.3).
int svirt_pidfd_open(pid_t pid);
// pidfd_send_signal(pidfd, sig, NULL, 0).
int svirt_pidfd_send_signal(int pidfd, int sig);

// pipe2(fds, O_CLOEXEC).
int svirt_pipe_cloexec(int fds[2]);

// Renames `from` to `to` only if `to` does not exist (renameat2 RENAME_NOREPLACE; where the filesystem lacks it,
// link then unlink). 0, or -1 with errno (EEXIST when `to` exists).
int svirt_rename_noreplace(const char *from, const char *to);

// The session id of a process (getsid).
pid_t svirt_getsid(pid_t pid);

#endif
