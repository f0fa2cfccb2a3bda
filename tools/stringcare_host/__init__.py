"""Host-side runtime of StringCare: what a manager running on a PC or Raspberry Pi needs
at run time, separate from the developer CLI (the `stringcare` package).

    transport  bus transports (serial port / socket:// through pyserial, simulated bus)
               and the BusDriver that feeds a BusMaster from one
    status     the status view of a running manager core as one plain dict, the
               recording event log and the operator's text of an event
    web        the read-only status page and its JSON, served from a bounded pool
    errors     UserError: a message that says what was wrong and what to do

Board shells (boards/linux_manager) and the CLI both import from here; nothing here
imports the CLI package, and nothing under boards/ imports it either
(host_tests/host/test_layering.py checks both).
"""
