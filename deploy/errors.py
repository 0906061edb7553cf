"""Errors of the serial link (flashing and the device runner).

Every failure the user can cause or meet on the bench gets its own subclass of
`TinymlError`, so callers (and tests) can tell a board that does not answer
from one with read-out protection or a bad cable.
"""
from __future__ import annotations

from tinyml.errors import TinymlError


class SerialLinkError(TinymlError):
    """Something went wrong on the serial link."""


class PortError(SerialLinkError):
    """The serial port cannot be opened."""


class PortMissingError(PortError):
    """The port path (or URL) does not exist."""


class PortBusyError(PortError):
    """Another program holds the port."""


class NoAnswerError(SerialLinkError):
    """The device does not answer (or stopped answering)."""


class LinkLostError(NoAnswerError):
    """The serial port itself failed (adapter unplugged, device gone)."""


class WrongChipError(SerialLinkError):
    """The bootloader reports another product id than the board's."""


class ReadoutProtectedError(SerialLinkError):
    """Read-out protection is active: Read/Write/Erase are refused."""


class WriteNackError(SerialLinkError):
    """The bootloader refused a Write Memory block after all retries."""


class EraseError(SerialLinkError):
    """The bootloader refused or did not finish an erase."""


class EraseRefusedError(EraseError):
    """The bootloader answered NACK to an erase (sector missing or write-protected)."""


class VerifyMismatchError(SerialLinkError):
    """Flash content read back differs from the image."""

    exit_code = 1


class BootloaderProtocolError(SerialLinkError):
    """The bootloader answered, but not in a way AN3155 allows."""


class DeviceProtocolError(SerialLinkError):
    """The device runner got noise, an error line, or an unexpected answer."""


class FirmwareFileError(TinymlError):
    """The firmware file is missing, unreadable or does not fit the board."""


class FlashSizeError(SerialLinkError):
    """The chip's flash is smaller than the board descriptor says."""
