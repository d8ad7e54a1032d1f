/*
 * Kestrel's DSDT for the pc machine, compiled by iasl at build time.
 * Keep \_S5 in step with ACPI_PM_S5_SLP_TYP in src/hw/acpi_pm.h (a unit test checks).
 */
DefinitionBlock ("", "DSDT", 2, "KESTRL", "KESTREL ", 1)
{
    Scope (\_SB)
    {
        /* COM1, so the OS knows its port and IRQ without probing. */
        Device (COM1)
        {
            Name (_HID, EisaId ("PNP0501"))
            Name (_UID, One)
            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, 0x03F8, 0x03F8, 0x00, 0x08)
                IRQNoFlags () {4}
            })
        }
    }

    /* S5, soft off: SLP_TYP for PM1a and PM1b (ACPI 6.4 §7.4.2). */
    Name (\_S5, Package (0x04) { 0x05, 0x05, Zero, Zero })
}
