/*
 * fw_cfg driven by a guest: selector writes, data-port reads of any width,
 * and DMA descriptors (select/skip/read/write, any length and address) that
 * the input writes into a small guest RAM.  Each 6-byte record is one
 * access: op, sub-register, 32-bit value.  Targets at 0x10000 + op * 32 KiB
 * reach past the end of RAM, so refusals are exercised.  Every DMA must stay inside the
 * 1 MiB RAM (ASan sees a write past the mapping).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_device.h"
#include "hw/fw_cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

#define RAM (1u << 20)

static void add_items(struct fw_cfg *fw)
{
	static uint8_t blob[5000];

	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (uint8_t)i;
	if (fw_cfg_add_u64(fw, FW_CFG_RAM_SIZE, RAM) < 0 ||
	    fw_cfg_add_u16(fw, FW_CFG_NB_CPUS, 2) < 0 ||
	    fw_cfg_add_file(fw, "etc/small", "x", 1) < 0 ||
	    fw_cfg_add_file(fw, "etc/empty", "", 0) < 0 ||
	    fw_cfg_add_file(fw, "etc/table-loader", blob, sizeof(blob)) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct guest_memory *mem = fuzz_device_ram(RAM);
	struct fw_cfg fw;

	if (fw_cfg_init(&fw, mem) < 0)
		abort();
	add_items(&fw);

	for (size_t i = 0; i + 6 <= len; i += 6) {
		uint8_t op = data[i], sub = data[i + 1];
		uint8_t v[8] = { 0 };
		unsigned size = 1u << (op >> 6);	/* 1, 2, 4 or 8 bytes */
		uint32_t addr;

		memcpy(v, data + i + 2, 4);
		switch (op & 7) {
		case 0:
			fw_cfg_io(&fw, 0, true, v, size > 2 ? 2 : size);
			break;
		case 1:
			fw_cfg_io(&fw, sub % FW_CFG_PORT_LEN, false, v, size > 4 ? 4 : size);
			break;
		case 2:	/* a descriptor address: low half (starts DMA), high half, or whole */
			fw_cfg_dma_io(&fw, sub % 8, true, v, size > 4 ? 4 : size);
			break;
		case 3:
			fw_cfg_dma_io(&fw, sub % 9, false, v, size);
			break;
		case 4: {	/* a descriptor at 0x1000, run at once: length from sub, target from op */
			uint32_t length = __builtin_bswap32((uint32_t)sub << 6 | ((op >> 3) & 7));
			uint64_t target = __builtin_bswap64(0x10000u + ((uint32_t)(op >> 3) << 15));
			uint64_t gpa = __builtin_bswap64(0x1000);

			memcpy(mem->host + 0x1000, v, 4);	/* control, big-endian */
			memcpy(mem->host + 0x1004, &length, 4);
			memcpy(mem->host + 0x1008, &target, 8);
			fw_cfg_dma_io(&fw, 0, true, (uint8_t *)&gpa, 8);
			break;
		}
		default:	/* guest RAM */
			addr = ((uint32_t)sub << 12 | (uint32_t)(op >> 3) << 4) & (RAM - 4);
			memcpy(mem->host + addr, v, 4);
			break;
		}
	}
	fw_cfg_destroy(&fw);
	return 0;
}
