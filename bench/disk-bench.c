/* Guest-side disk benchmark for scripts/bench disk (built static into the guest initramfs).
 *   keel-disk-bench DEVICE seqread|seqwrite MIB     sequential 1 MiB O_DIRECT transfers
 *   keel-disk-bench DEVICE randread SECONDS         random 4 KiB O_DIRECT reads, queue depth 1
 * Prints one line: "KEEL-GUEST bench_<mode>=<MB/s or IOPS>". Writes destroy the device's data. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s DEVICE seqread|seqwrite|randread AMOUNT\n", argv[0]); return 2; }
    const char *mode = argv[2];
    long amount = atol(argv[3]);
    int writing = strcmp(mode, "seqwrite") == 0;
    int fd = open(argv[1], (writing ? O_RDWR : O_RDONLY) | O_DIRECT);
    if (fd < 0) { perror(argv[1]); return 1; }
    uint64_t size = 0;
    if (ioctl(fd, BLKGETSIZE64, &size) != 0) { perror("BLKGETSIZE64"); return 1; }
    void *buf;
    if (posix_memalign(&buf, 4096, 1 << 20) != 0) return 1;
    memset(buf, 0x5A, 1 << 20);
    if (strcmp(mode, "randread") == 0) {
        uint64_t blocks = size / 4096, n = 0, x = 88172645463325252ull;
        double start = now(), end = start + amount;
        while (now() < end) {
            for (int i = 0; i < 64; i++, n++) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                if (pread(fd, buf, 4096, (off_t)(x % blocks) * 4096) != 4096) { perror("pread"); return 1; }
            }
        }
        printf("KEEL-GUEST bench_randread_iops=%.0f\n", n / (now() - start));
        return 0;
    }
    uint64_t total = (uint64_t)amount << 20;
    if (total > size) total = size & ~((1ull << 20) - 1);
    double start = now();
    for (uint64_t off = 0; off < total; off += 1 << 20) {
        ssize_t r = writing ? pwrite(fd, buf, 1 << 20, off) : pread(fd, buf, 1 << 20, off);
        if (r != 1 << 20) { perror(mode); return 1; }
    }
    if (writing && fdatasync(fd) != 0) { perror("fdatasync"); return 1; }
    printf("KEEL-GUEST bench_%s_mbps=%.1f\n", mode, total / 1e6 / (now() - start));
    return 0;
}
