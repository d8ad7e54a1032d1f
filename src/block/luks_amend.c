/*
 * qemu-img amend's keyslot changes on a LUKS1 header (luks_amend.h).  Each
 * change writes the key material before the header that points at it, and
 * erases the header's pointer before the material, so that a crash between
 * the two writes leaves either the old set of usable keyslots or the new.
 */
#include "block/luks_amend.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

static int write_header(struct luks_keyslots *v, char *err, size_t errlen)
{
	uint8_t buf[LUKS_HDR_SIZE];
	int ret;

	luks1_format(v->h, buf);
	ret = v->write(v->opaque, 0, buf, sizeof(buf));
	if (ret == 0)
		ret = v->flush(v->opaque);
	return ret < 0 ? block_err(err, errlen, "Could not write the LUKS header: %s",
				   strerror(-ret)) : 0;
}

static const char *amend_secret(const struct block_create_opts *o, const char *name,
				size_t *len, char *err, size_t errlen)
{
	const struct block_fmt_opt *f = block_create_opt(o, name);
	const char *pw;

	if (!f)
		return NULL;
	pw = block_secret_lookup(f->val, len);
	if (!pw)
		block_err(err, errlen, "No secret with id '%s'", f->val);
	return pw;
}

/* state=active: the first free keyslot (or keyslot=) gets the new secret. */
static int amend_add(struct luks_keyslots *v, const struct block_create_opts *o, int slot,
		     char *err, size_t errlen)
{
	const struct block_fmt_opt *it = block_create_opt(o, "iter-time");
	const char *pw;
	size_t len;

	if (!block_create_opt(o, "new-secret"))
		return block_err(err, errlen, "'new-secret' is required to activate a keyslot");
	if (block_create_opt(o, "old-secret"))
		return block_err(err, errlen, "'old-secret' must not be given when activating "
				 "keyslots");
	for (int i = 0; slot < 0 && i < LUKS_NUM_SLOTS; i++)
		if (v->h->slots[i].active != LUKS_SLOT_ACTIVE)
			slot = i;
	if (slot < 0)
		return block_err(err, errlen, "Can't add a keyslot - all keyslots are in use");
	if (v->h->slots[slot].active == LUKS_SLOT_ACTIVE)
		return block_err(err, errlen, "Refusing to overwrite active keyslot %d - please "
				 "erase it first", slot);
	pw = amend_secret(o, "new-secret", &len, err, errlen);
	if (!pw)
		return -1;
	/* The material first, the header (one write) last: a crash leaves the slot unused. */
	if (luks_slot_set(v->h, slot, pw, len, v->key, it ? it->num : 2000, v->write, v->opaque, err,
			  errlen) < 0)
		return -1;
	return write_header(v, err, errlen);
}

/* The keyslots state=inactive erases: keyslot=, or every one old-secret opens. */
static int erase_set(struct luks_keyslots *v, const struct block_create_opts *o, int slot,
		     bool *set, char *err, size_t errlen)
{
	uint8_t key[LUKS_MAX_KEY];
	const char *pw = NULL;
	size_t len = 0;
	int n = 0;

	if (block_create_opt(o, "old-secret") && !(pw = amend_secret(o, "old-secret", &len, err,
								    errlen)))
		return -1;
	for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
		int r = 0;
		set[i] = false;
		if ((slot >= 0 && i != slot) || v->h->slots[i].active != LUKS_SLOT_ACTIVE)
			continue;
		if (pw && (r = luks_slot_check(v->h, &v->h->slots[i], pw, len, v->read, v->opaque, key,
					       err, errlen)) < 0)
			return -1;
		set[i] = !pw || r;
		n += set[i];
	}
	memset(key, 0, sizeof(key));
	/* QEMU's order: with old-secret the password decides first. */
	if (slot >= 0 && pw && !n)
		return block_err(err, errlen, "Given keyslot %d doesn't contain the given old "
				 "password for erase operation", slot);
	if (slot >= 0 && v->h->slots[slot].active != LUKS_SLOT_ACTIVE)
		return block_err(err, errlen, "Given keyslot %d is already erased (inactive) ", slot);
	if (!n)
		return block_err(err, errlen, "No keyslots match given (old) password for erase "
				 "operation");
	return n;
}

static int amend_erase(struct luks_keyslots *v, const struct block_create_opts *o, int slot,
		       char *err, size_t errlen)
{
	bool set[LUKS_NUM_SLOTS];
	int n, active = 0;

	if (block_create_opt(o, "new-secret"))
		return block_err(err, errlen, "'new-secret' must not be given when erasing keyslots");
	if (slot < 0 && !block_create_opt(o, "old-secret"))
		return block_err(err, errlen, "To erase keyslot(s), either explicit keyslot index "
				 "or the password currently contained in them must be given");
	n = erase_set(v, o, slot, set, err, errlen);
	if (n < 0)
		return -1;
	for (int i = 0; i < LUKS_NUM_SLOTS; i++)
		active += v->h->slots[i].active == LUKS_SLOT_ACTIVE;
	/* The data would be lost for good: QEMU refuses (without --force, which Kestrel lacks). */
	if (n == active && slot >= 0)
		return block_err(err, errlen, "Attempt to erase the only active keyslot %d which "
				 "will erase all the data in the image irreversibly - refusing "
				 "operation", slot);
	if (n == active)
		return block_err(err, errlen, "All the active keyslots match the (old) password that "
				 "was given and erasing them will erase all the data in the image "
				 "irreversibly - refusing operation");
	/* Header first: once no slot points at the material, wiping it loses nothing. */
	for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
		if (set[i]) {
			v->h->slots[i].active = LUKS_SLOT_DISABLED;
			v->h->slots[i].iters = 0;
			memset(v->h->slots[i].salt, 0, sizeof(v->h->slots[i].salt));
			if (write_header(v, err, errlen) < 0 ||
			    luks_slot_erase(v->h, i, v->write, v->opaque, err, errlen) < 0)
				return -1;
		}
	}
	return write_header(v, err, errlen);
}

/* QEMU's qcrypto_block_luks_amend_options. */
int luks_amend_keyslots(struct luks_keyslots *v, const struct block_create_opts *o, char *err,
			size_t errlen)
{
	static const char *const states[] = { "active", "inactive", NULL };
	const struct block_fmt_opt *st = block_create_opt(o, "state");
	const struct block_fmt_opt *ks = block_create_opt(o, "keyslot");
	int slot = -1, state;

	if (!st)
		return block_err(err, errlen, "Parameter 'state' is missing");
	for (state = 0; states[state] && strcmp(states[state], st->val); state++)
		;
	if (!states[state])
		return block_err(err, errlen, "Parameter 'state' does not accept value '%s'",
				 st->val);
	if (ks && ks->num >= LUKS_NUM_SLOTS)
		return block_err(err, errlen, "Invalid keyslot %" PRIu64 " specified, must be "
				 "between 0 and %d", ks->num, LUKS_NUM_SLOTS - 1);
	if (ks)
		slot = (int)ks->num;
	if (v->h->version != 1)
		return block_err(err, errlen, "Kestrel manages the keyslots of LUKS1 volumes only");
	return state == 0 ? amend_add(v, o, slot, err, errlen) :
			    amend_erase(v, o, slot, err, errlen);
}

