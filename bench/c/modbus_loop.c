/* Baseline for `make bench`: libmodbus (C) reading the same requests in a loop.
 * usage: modbus_loop HOST PORT UNIT SECONDS FC:ADDR:COUNT [FC:ADDR:COUNT ...]
 * prints: requests seconds */
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: %s HOST PORT UNIT SECONDS FC:ADDR:COUNT...\n", argv[0]); return 2; }
    modbus_t *ctx = modbus_new_tcp(argv[1], atoi(argv[2]));
    modbus_set_slave(ctx, atoi(argv[3]));
    if (modbus_connect(ctx) == -1) { fprintf(stderr, "connect: %s\n", modbus_strerror(errno)); return 1; }
    double seconds = atof(argv[4]);
    int nreq = argc - 5, fc[64], addr[64], count[64];
    for (int i = 0; i < nreq && i < 64; i++) sscanf(argv[5 + i], "%d:%d:%d", &fc[i], &addr[i], &count[i]);
    uint16_t regs[125];
    long n = 0;
    double t0 = now(), t = t0;
    while (t - t0 < seconds) {
        for (int i = 0; i < nreq; i++) {
            int rc = fc[i] == 4 ? modbus_read_input_registers(ctx, addr[i], count[i], regs)
                                : modbus_read_registers(ctx, addr[i], count[i], regs);
            if (rc != count[i]) { fprintf(stderr, "read: %s\n", modbus_strerror(errno)); return 1; }
            n++;
        }
        t = now();
    }
    printf("%ld %f\n", n, t - t0);
    modbus_close(ctx);
    modbus_free(ctx);
    return 0;
}
