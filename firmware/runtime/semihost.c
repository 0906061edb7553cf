/*
 * ARM semihosting (BKPT 0xAB, operation in r0, argument in r1) for exit.
 * QEMU services it with `-semihosting-config enable=on,target=native`;
 * without a host the HardFault handler turns the call into a -1 return.
 */
#include <stdint.h>

#include "runtime.h"

#define SYS_ERRNO 0x13u
#define SYS_EXIT 0x18u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define ADP_STOPPED_RUNTIME_ERROR 0x20023u

static int semihost_ok;

static int32_t semihost_call(uint32_t op, uint32_t arg)
{
    register uint32_t r0 __asm("r0") = op;
    register uint32_t r1 __asm("r1") = arg;
    __asm volatile ("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

void semihost_probe(void)
{
    /* SYS_ERRNO returns errno (>= 0) from a host; -1 from our fault handler. */
    semihost_ok = semihost_call(SYS_ERRNO, 0u) >= 0;
}

int semihost_available(void) { return semihost_ok; }

void board_exit(int code)
{
    if (semihost_ok) {
        semihost_call(SYS_EXIT, code == 0 ? ADP_STOPPED_APPLICATION_EXIT : ADP_STOPPED_RUNTIME_ERROR);
    }
    __asm volatile ("cpsid i");
    for (;;) {
        __asm volatile ("wfi");
    }
}
