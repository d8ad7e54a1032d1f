/*
 * LUKS2's argon2i/argon2id keyslots (LUKS2 spec 3.2: "kdf"), on libargon2
 * where Kestrel was built with it (meson finds libargon2; optional).  The
 * memory cost is bounded: a hostile header must not make us allocate more
 * than cryptsetup's own maximum (4 GiB) -- Kestrel stops at 1 GiB.
 */
#include "block/crypto/luks.h"

#include <stdio.h>

#ifdef KESTREL_ARGON2
#include <argon2.h>
#endif

#define MAX_ARGON2_KIB (1u << 20)

int luks_argon2(const struct luks_slot *s, const void *pw, size_t pwlen, uint8_t *out,
		size_t outlen, char *err, size_t errlen)
{
#ifdef KESTREL_ARGON2
	int ret;

	if (s->memory > MAX_ARGON2_KIB) {
		snprintf(err, errlen, "Keyslot argon2 memory cost %u KiB is larger than Kestrel's "
			 "limit %u KiB", s->memory, MAX_ARGON2_KIB);
		return -1;
	}
	ret = argon2_hash(s->iters, s->memory, s->cpus, pw, pwlen, s->salt, s->salt_len, out,
			  outlen, NULL, 0, s->kdf == 1 ? Argon2_i : Argon2_id, ARGON2_VERSION_13);
	if (ret != ARGON2_OK) {
		snprintf(err, errlen, "argon2 failed: %s", argon2_error_message(ret));
		return -1;
	}
	return 0;
#else
	(void)pw; (void)pwlen; (void)out; (void)outlen;
	snprintf(err, errlen, "Keyslot KDF %s needs libargon2, which this Kestrel was built "
		 "without", s->kdf == 1 ? "argon2i" : "argon2id");
	return -1;
#endif
}
