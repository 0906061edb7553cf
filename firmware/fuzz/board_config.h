/* Host fuzzing build of the serial app (firmware/fuzz): no board, no UART
 * registers; serial_fuzz.c provides uart_getc/uart_putc and the timer. */
#ifndef TINYML_BOARD_CONFIG_H
#define TINYML_BOARD_CONFIG_H

#define TINYML_BOARD_NAME "host-fuzz"
#define TINYML_MODE_SERIAL 1

#endif /* TINYML_BOARD_CONFIG_H */
