# The RS-485 bus of the RP2040 boards (module, current sensor, I/O box, converter): a
# UART and the isolated transceiver's driver-enable pin, raised for a reply and dropped
# after the last stop bit.  A board's HAL subclasses Rp2040Bus and calls open_bus() in
# its __init__ with the buffer sizes it wants.
from machine import UART, Pin


class Rp2040Bus:
    baud: int
    uart: UART
    de: Pin

    def open_bus(self, board: dict, settings: dict, rxbuf: int, txbuf: int) -> None:
        """The bus UART at the site's baud rate (settings) or else the board's, DE low."""
        pins = board["pins"]
        self.baud = settings.get("baud", board["baud"])
        self.uart = UART(
            pins["bus_uart"], self.baud, tx=Pin(pins["bus_tx"]), rx=Pin(pins["bus_rx"]),
            rxbuf=rxbuf, txbuf=txbuf, timeout=0,
        )  # fmt: skip
        self.de = Pin(pins["bus_de"], Pin.OUT, value=0)

    def bus_rx(self, buf) -> int:
        if not self.uart.any():
            return 0
        return self.uart.readinto(buf) or 0

    def bus_tx(self, buf, n: int) -> None:
        self.de(1)
        self.uart.write(memoryview(buf)[:n])
        self.uart.flush()  # returns when the last stop bit has left the shifter
        self.de(0)
