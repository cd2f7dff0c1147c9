// medkoord-pg-cluster: owns one private PostgreSQL 15 cluster for tests.
//
// The cluster lives in a temporary directory, listens on 127.0.0.1 on a free
// port and runs as an unprivileged user (initdb refuses root). Whatever
// happens to the process that asked for it, the cluster is stopped and its
// directory removed:
//
//   serve                   foreground watchdog for one test process: prints
//                           "ready port=<p> dir=<d> user=<u>" on stdout, then
//                           reads commands on stdin ("restart"); stdin EOF (the
//                           test process exited or crashed) stops the server
//                           and removes the directory.
//   start --info FILE       ctest fixture setup: forks a detached watchdog that
//                           lives until `stop` or until the process that ran
//                           `start` (ctest) is gone, writes FILE, returns.
//   stop --info FILE        ctest fixture cleanup: ends that watchdog.
//
// A separate executable rather than a fork() inside the test process, because
// forking a multi-threaded test process is unsafe.

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr char kBinDir[] = "/usr/lib/postgresql/15/bin";
constexpr char kSuperuser[] = "medkoord";

volatile sig_atomic_t g_stop_requested = 0;
int g_wake_pipe[2] = {-1, -1};

void OnStopSignal(int) {
  g_stop_requested = 1;
  if (g_wake_pipe[1] >= 0) {
    char c = 1;
    ssize_t ignored = write(g_wake_pipe[1], &c, 1);
    (void)ignored;
  }
}

void InstallStopHandlers() {
  if (pipe2(g_wake_pipe, O_CLOEXEC) != 0) g_wake_pipe[0] = g_wake_pipe[1] = -1;
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking read returns EINTR
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "medkoord-pg-cluster: " << what << std::endl;
  std::exit(1);
}

// Who runs initdb and postgres: ourselves unless we are root.
struct RunAs {
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};

RunAs ResolveUser() {
  RunAs r;
  if (geteuid() != 0) {
    passwd* pw = getpwuid(geteuid());
    r.name = pw ? pw->pw_name : std::to_string(geteuid());
    r.uid = geteuid();
    r.gid = getegid();
    return r;
  }
  for (const char* candidate : {"postgres", "nobody"}) {
    if (passwd* pw = getpwnam(candidate)) {
      r.switch_user = true;
      r.uid = pw->pw_uid;
      r.gid = pw->pw_gid;
      r.name = candidate;
      return r;
    }
  }
  Die("running as root and neither user 'postgres' nor 'nobody' exists");
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) Die("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) Die("bind failed");
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// In a forked child: drop to the cluster user, move into the cluster
// directory, send output to `log_path`, exec.
[[noreturn]] void ExecAs(const RunAs& user, const std::string& dir, const std::string& log_path,
                         const std::vector<std::string>& args, bool die_with_parent) {
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  int null_fd = open("/dev/null", O_RDONLY);
  if (log_fd >= 0) {
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
  }
  if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
  // Nothing of ours (pipes to the test process, ctest's) leaks into postgres.
  for (int fd = 3; fd < 1024; ++fd) close(fd);
  if (user.switch_user) {
    if (setgroups(0, nullptr) != 0 || setgid(user.gid) != 0 || setuid(user.uid) != 0) _exit(126);
  }
  // After the credential change, which would clear it: if the watchdog is
  // killed outright, the postmaster still shuts down (SIGINT = fast shutdown).
  if (die_with_parent) prctl(PR_SET_PDEATHSIG, SIGINT);
  if (chdir(dir.c_str()) != 0) _exit(126);
  setpgid(0, 0);  // a terminal ^C reaches the watchdog, which stops us in order
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  _exit(127);
}

class Cluster {
 public:
  Cluster() : user_(ResolveUser()) {}

  void Create() {
    // As root, TMPDIR may point somewhere the cluster user cannot reach.
    std::filesystem::path base =
        user_.switch_user ? std::filesystem::path("/tmp") : std::filesystem::temp_directory_path();
    std::string tmpl = (base / "medkoord-pg-XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) Die("mkdtemp failed: " + std::string(strerror(errno)));
    dir_ = buf.data();
    if (user_.switch_user && chown(dir_.c_str(), user_.uid, user_.gid) != 0) {
      Die("chown " + dir_ + " failed: " + strerror(errno));
    }
    chmod(dir_.c_str(), 0700);
    pid_t pid = fork();
    if (pid < 0) Die("fork failed");
    if (pid == 0) {
      ExecAs(user_, dir_, dir_ + "/initdb.log",
             {std::string(kBinDir) + "/initdb", "-D", dir_ + "/data", "-U", kSuperuser, "--auth=trust",
              "-E", "UTF8", "--locale=C", "--no-sync"},
             false);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::string log = ReadFile(dir_ + "/initdb.log");
      Remove();
      Die("initdb failed:\n" + log);
    }
  }

  // Starts postgres on `port` (0: a free one), waiting until it accepts
  // connections.
  void Start(int port) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = port != 0 ? port : FreePort();
      if (TryStart()) return;
      if (port != 0) break;  // a fixed port (restart) is not ours to change
    }
    Die("postgres did not start:\n" + ReadFile(dir_ + "/postgres.log"));
  }

  void StopServer() {
    if (postmaster_ <= 0) return;
    kill(postmaster_, SIGINT);  // fast shutdown: disconnect clients, checkpoint
    int status = 0;
    while (waitpid(postmaster_, &status, 0) < 0 && errno == EINTR) {
    }
    postmaster_ = -1;
  }

  void Remove() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  void Destroy() {
    StopServer();
    Remove();
  }

  std::string ReadyLine() const {
    return "ready port=" + std::to_string(port_) + " dir=" + dir_ + " user=" + kSuperuser;
  }
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }

 private:
  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  bool TryStart() {
    pid_t pid = fork();
    if (pid < 0) Die("fork failed");
    if (pid == 0) {
      // Tests need speed, not durability: a test cluster is thrown away.
      ExecAs(user_, dir_, dir_ + "/postgres.log",
             {std::string(kBinDir) + "/postgres", "-D", dir_ + "/data", "-p", std::to_string(port_),
              "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir_, "-c",
              "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c",
              "max_connections=300", "-c", "shared_buffers=32MB", "-c", "logging_collector=off"},
             true);
    }
    postmaster_ = pid;
    std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + kSuperuser +
                           " dbname=postgres connect_timeout=5";
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (PQping(conninfo.c_str()) == PQPING_OK) return true;
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        postmaster_ = -1;
        return false;  // e.g. the port was taken meanwhile
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    StopServer();
    return false;
  }

  RunAs user_;
  std::string dir_;
  int port_ = 0;
  pid_t postmaster_ = -1;
};

// Foreground watchdog of one test process, driven over stdin.
int Serve() {
  InstallStopHandlers();
  Cluster cluster;
  cluster.Create();
  cluster.Start(0);
  std::cout << cluster.ReadyLine() << std::endl;
  std::string line;
  while (!g_stop_requested) {
    char buf[256];
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the test process is gone
    line.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = line.find('\n')) != std::string::npos) {
      std::string cmd = line.substr(0, nl);
      line.erase(0, nl + 1);
      if (cmd == "restart") {
        cluster.StopServer();
        cluster.Start(cluster.port());
        std::cout << cluster.ReadyLine() << std::endl;
      } else if (cmd == "stop-server") {
        cluster.StopServer();
        std::cout << "stopped" << std::endl;
      } else if (cmd == "start-server") {
        cluster.Start(cluster.port());
        std::cout << cluster.ReadyLine() << std::endl;
      } else {
        std::cout << "error unknown command " << cmd << std::endl;
      }
    }
  }
  cluster.Destroy();
  return 0;
}

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  return -1;
#endif
}

// Blocks until `pid` exits or a stop signal arrives.
void WaitForExitOrSignal(pid_t pid) {
  int pidfd = PidfdOpen(pid);
  while (!g_stop_requested) {
    if (pidfd >= 0) {
      pollfd fds[2] = {{pidfd, POLLIN, 0}, {g_wake_pipe[0], POLLIN, 0}};
      int r = poll(fds, 2, -1);
      if (r > 0 && (fds[0].revents & POLLIN)) return;
    } else {
      // No pidfd (old kernel): notice the watched process within a second.
      if (kill(pid, 0) != 0 && errno == ESRCH) return;
      pollfd fds[1] = {{g_wake_pipe[0], POLLIN, 0}};
      poll(fds, 1, 1000);
    }
  }
}

std::string InfoArg(int argc, char** argv) {
  for (int i = 2; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--info") return argv[i + 1];
  }
  Die("missing --info FILE");
}

// ctest fixture setup: a detached watchdog tied to ctest's lifetime.
int StartDetached(const std::string& info_path) {
  pid_t watched = getppid();  // ctest, which runs fixture tests directly
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) Die("pipe failed");
  pid_t pid = fork();
  if (pid < 0) Die("fork failed");
  if (pid == 0) {
    close(ready[0]);
    setsid();
    // Let go of ctest's output pipes, or ctest would wait for us.
    int null_fd = open("/dev/null", O_RDWR);
    dup2(null_fd, STDIN_FILENO);
    dup2(null_fd, STDOUT_FILENO);
    dup2(null_fd, STDERR_FILENO);
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != ready[1]) close(fd);
    }
    InstallStopHandlers();
    Cluster cluster;
    cluster.Create();
    cluster.Start(0);
    std::string line = cluster.ReadyLine() + " pid=" + std::to_string(getpid()) + "\n";
    ssize_t ignored = write(ready[1], line.data(), line.size());
    (void)ignored;
    close(ready[1]);
    WaitForExitOrSignal(watched);
    cluster.Destroy();
    _exit(0);
  }
  close(ready[1]);
  std::string line;
  char buf[512];
  ssize_t n;
  while ((n = read(ready[0], buf, sizeof buf)) > 0) line.append(buf, static_cast<size_t>(n));
  int status = 0;
  if (line.empty()) {
    waitpid(pid, &status, 0);
    Die("the cluster did not start (run `medkoord-pg-cluster serve` to see why)");
  }
  // The info file: one key=value per line, read by tests/support.
  std::istringstream fields(line);
  std::string tmp = info_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    std::string field;
    fields >> field;  // "ready"
    while (fields >> field) out << field << "\n";
    out << "host=127.0.0.1\n";
  }
  std::filesystem::rename(tmp, info_path);
  std::cout << line;
  return 0;
}

int StopDetached(const std::string& info_path) {
  std::ifstream in(info_path);
  if (!in) {
    std::cout << "no cluster recorded in " << info_path << "\n";
    return 0;
  }
  pid_t pid = -1;
  std::string kv;
  while (std::getline(in, kv)) {
    if (kv.rfind("pid=", 0) == 0) pid = std::atoi(kv.c_str() + 4);
  }
  in.close();
  std::error_code ec;
  std::filesystem::remove(info_path, ec);
  if (pid <= 0) return 0;
  int pidfd = PidfdOpen(pid);
  if (kill(pid, SIGTERM) != 0) return 0;  // already gone
  if (pidfd >= 0) {
    pollfd fds[1] = {{pidfd, POLLIN, 0}};
    poll(fds, 1, 120000);
  } else {
    while (kill(pid, 0) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::cout << "stopped cluster watchdog " << pid << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "serve") return Serve();
  if (mode == "start") return StartDetached(InfoArg(argc, argv));
  if (mode == "stop") return StopDetached(InfoArg(argc, argv));
  std::cerr << "usage: medkoord-pg-cluster serve | start --info FILE | stop --info FILE\n";
  return 2;
}
