/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as VHDX (spec 1.0
 * §2.2.2 "Checksum") and iSCSI use it: crc32c(0, buf, len) is the standard
 * checksum; feeding the result back in as crc continues it over more data.
 */
#ifndef KESTREL_UTIL_CRC32C_H
#define KESTREL_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
