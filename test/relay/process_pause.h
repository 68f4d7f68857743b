// SIGSTOP that has taken effect. kill() returns once the signal is queued, not once the target
// stopped: on a busy host a server may go on answering for milliseconds, and a test that asserts
// "nothing answers while paused" then fails for no fault of the code under test (CI saw a
// JetStream ack arrive after kill(SIGSTOP) had returned). Every thread has to be stopped, as the
// server's threads each answer on their own.
#pragma once
#include <dirent.h>
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

namespace outbox::test {

// The state letter of /proc/<pid>/task/<tid>/stat ('T' when stopped), '?' when unreadable.
inline char task_state(pid_t pid, const std::string& tid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/task/" + tid + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ? '?' : stat[close + 2];
}

inline bool all_tasks_stopped(pid_t pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (!d) return false;
  bool stopped = true, any = false;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    any = true;
    char s = task_state(pid, e->d_name);
    if (s != 'T' && s != 't') stopped = false;
  }
  ::closedir(d);
  return any && stopped;
}

// Sends SIGSTOP and waits (up to 5 s) until every thread of pid is stopped; false if it never was.
inline bool pause_process(pid_t pid) {
  if (pid <= 0 || ::kill(pid, SIGSTOP) != 0) return false;
  for (int i = 0; i < 500; ++i) {
    if (all_tasks_stopped(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace outbox::test
