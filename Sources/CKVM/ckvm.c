#define _GNU_SOURCE
#include "ckvm.h"
#include <signal.h>
#include <string.h>
#include <pthread.h>

static _Thread_local struct kvm_run *ckvm_thread_run;

int ckvm_kick_signal(void) { return SIGRTMIN + 1; }

static void ckvm_kick_handler(int sig) {
    (void)sig;
    struct kvm_run *run = ckvm_thread_run;
    if (run) run->immediate_exit = 1;
}

int ckvm_install_kick_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ckvm_kick_handler;
    sigemptyset(&sa.sa_mask);
    return sigaction(ckvm_kick_signal(), &sa, NULL);
}

int ckvm_vcpu_thread_prepare(struct kvm_run *run) {
    ckvm_thread_run = run;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, ckvm_kick_signal());
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int ckvm_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }

#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <errno.h>

int ckvm_tap_open(const char *name) {
    if (strlen(name) >= IFNAMSIZ) { errno = ENAMETOOLONG; return -1; }
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    int header_size = 10;
    if (ioctl(fd, TUNSETVNETHDRSZ, &header_size) != 0 || ioctl(fd, TUNSETOFFLOAD, 0) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int ckvm_tap_set_offload(int fd, unsigned int flags) { return ioctl(fd, TUNSETOFFLOAD, flags); }
