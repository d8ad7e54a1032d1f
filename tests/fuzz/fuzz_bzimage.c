/*
 * Linux bzImage loader on arbitrary -kernel files, behind bzimage_detect as
 * in boot_setup.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_guest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct boot_request req = fuzz_boot_request(len);
	struct boot_entry entry;

	if (!bzimage_detect(data, len))
		return 0;
	if (bzimage_load(&req, data, len, &entry) == 0 && entry.esi == 0)
		abort();	/* a started bzImage always gets its boot_params */
	return 0;
}
