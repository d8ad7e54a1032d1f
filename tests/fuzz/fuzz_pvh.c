/*
 * PVH ELF loader on arbitrary -kernel files.  boot_setup only hands a file to
 * pvh_load after pvh_detect accepted it, so this target does the same.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_guest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct boot_request req = fuzz_boot_request(len);
	struct boot_entry entry;

	if (!pvh_detect(data, len))
		return 0;
	if (pvh_load(&req, data, len, &entry) == 0 && entry.ebx == 0)
		abort();	/* a started PVH kernel always gets its start_info */
	return 0;
}
