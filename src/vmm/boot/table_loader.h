/*
 * Hands Kestrel's ACPI tables to firmware the way QEMU does: the tables and
 * the RSDP as fw_cfg files plus "etc/table-loader", a script of BIOS linker
 * commands (QEMU hw/acpi/bios-linker-loader.c) that tells SeaBIOS where to
 * place each blob, which pointers to relocate and which checksums to redo.
 */
#ifndef KESTREL_VMM_BOOT_TABLE_LOADER_H
#define KESTREL_VMM_BOOT_TABLE_LOADER_H

#include "hw/fw_cfg.h"
#include "vmm/boot/acpi.h"

/* Adds etc/acpi/tables, etc/acpi/rsdp and etc/table-loader; -1 on failure. */
int table_loader_install(struct fw_cfg *fw, const struct acpi_config *cfg);

#endif
