/*
 * newlib(-nano) system calls: stdout/stderr go to the console UART, stdin
 * reads it, and there is no heap: _sbrk fails with ENOMEM (the firmware is
 * static; a stray malloc returns NULL instead of growing into the stack).
 */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>

#include "runtime.h"

#undef errno
extern int errno;

int _write(int fd, const char *buf, int len)
{
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    for (int i = 0; i < len; ++i) {
        if (buf[i] == '\n') {
            uart_putc('\r');
        }
        uart_putc(buf[i]);
    }
    return len;
}

int _read(int fd, char *buf, int len)
{
    if (fd != 0) {
        errno = EBADF;
        return -1;
    }
    if (len <= 0) {
        return 0;
    }
    buf[0] = (char)uart_getc();
    return 1;
}

void *_sbrk(ptrdiff_t incr)
{
    (void)incr;
    errno = ENOMEM;
    return (void *)-1;
}

int _close(int fd) { (void)fd; errno = EBADF; return -1; }
int _lseek(int fd, int off, int whence) { (void)fd; (void)off; (void)whence; return 0; }
int _isatty(int fd) { return fd <= 2; }
int _fstat(int fd, struct stat *st) { (void)fd; st->st_mode = S_IFCHR; return 0; }
int _getpid(void) { return 1; }
int _kill(int pid, int sig) { (void)pid; (void)sig; errno = EINVAL; return -1; }
void _exit(int code)
{
    /* Reached through exit()/abort() (e.g. a failed newlib allocation). */
    con_nl();
    con_puts("FAULT exit code=");
    con_puti(code);
    con_nl();
    con_puts("RESULT FAIL");
    con_nl();
    board_exit(code == 0 ? 4 : code);
}
