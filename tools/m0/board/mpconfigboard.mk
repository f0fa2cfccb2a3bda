# StringCare's emulated Cortex-M0: MicroPython's qemu port on QEMU's "microbit"
# machine (nRF51, a real ARMv6-M Cortex-M0 core), configured like the RP2040 port:
# single-precision floats, 31-bit small ints (object representation A), MPZ long ints.
# RAM and flash are enlarged (QEMU allows it) so the manager's 192 KB test budget fits
# beside the interpreter; the test runner still fills the heap down to each budget.
QEMU_ARCH = arm
QEMU_MACHINE = microbit
QEMU_ARGS += -global nrf51-soc.flash-size=2097152 -global nrf51-soc.sram-size=1048576

CFLAGS += -mthumb -mcpu=cortex-m0 -mfloat-abi=soft
CFLAGS += -DQEMU_SOC_NRF51
CFLAGS += -DMICROPY_HW_MCU_NAME='"Cortex-M0"'
# native code (@micropython.native/viper, armv6m .mpy) as on the RP2040 port
CFLAGS += -DMICROPY_EMIT_THUMB=1 -DMICROPY_EMIT_THUMB_ARMV7M=0
CFLAGS += -DMICROPY_EMIT_INLINE_THUMB=1 -DMICROPY_EMIT_INLINE_THUMB_FLOAT=0
# the RP2040 port's float configuration
MICROPY_FLOAT_IMPL = float
MICROPY_HEAP_SIZE = 786432
# nothing frozen: the firmware under test arrives as a ROMFS image (tools/m0/run.py)
FROZEN_MANIFEST =

LDSCRIPT = boards/STRINGCARE_M0/m0.ld

SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb1.o

MPY_CROSS_FLAGS += -march=armv6m
