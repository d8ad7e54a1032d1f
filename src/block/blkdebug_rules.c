/*
 * blkdebug's rule engine (QEMU's block/blkdebug.c, 7.2): the config file
 * parser, the events and the request checks.  No block layer here, so the
 * unit tests and the fuzz target drive it alone.
 *
 * QEMU's semantics kept:
 * - a rule with state 0 acts in every state; the node starts in state 1;
 * - an event activates the inject-error rules for it whose state matches,
 *   replacing the active list only when at least one matches; set-state
 *   rules change the state once the event's rules have all been looked at;
 * - a request fails with the errno of the first active rule whose iotype
 *   and sector match, and a once=on rule is then deleted for good;
 * - immediately=on only spares QEMU a coroutine yield before the error;
 *   requests here are synchronous, so it changes nothing observable.
 */
#include "block/blkdebug.h"
#include "block/block_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const event_names[BLKDBG__MAX] = {
	"l1_update", "l1_grow_alloc_table", "l1_grow_write_table", "l1_grow_activate_table",
	"l2_load", "l2_update", "l2_update_compressed", "l2_alloc_cow_read", "l2_alloc_write",
	"read_aio", "read_backing_aio", "read_compressed", "write_aio", "write_compressed",
	"vmstate_load", "vmstate_save", "cow_read", "cow_write", "reftable_load",
	"reftable_grow", "reftable_update", "refblock_load", "refblock_update",
	"refblock_update_part", "refblock_alloc", "refblock_alloc_hookup",
	"refblock_alloc_write", "refblock_alloc_write_blocks", "refblock_alloc_write_table",
	"refblock_alloc_switch_table", "cluster_alloc", "cluster_alloc_bytes", "cluster_free",
	"flush_to_os", "flush_to_disk", "pwritev_rmw_head", "pwritev_rmw_after_head",
	"pwritev_rmw_tail", "pwritev_rmw_after_tail", "pwritev", "pwritev_zero",
	"pwritev_done", "empty_image_prepare", "l1_shrink_write_table",
	"l1_shrink_free_l2_clusters", "cor_write", "cluster_alloc_space", "none",
};

static const char *const iotype_names[BLKDBG_IO__MAX] = {
	"read", "write", "write-zeroes", "discard", "flush", "block-status",
};

/* QEMU's default iotype mask: everything but block-status. */
#define DEFAULT_IOTYPES ((1u << BLKDBG_IO_READ) | (1u << BLKDBG_IO_WRITE) | \
			 (1u << BLKDBG_IO_WRITE_ZEROES) | (1u << BLKDBG_IO_DISCARD) | \
			 (1u << BLKDBG_IO_FLUSH))

struct rule {
	bool inject;		/* inject-error, else set-state */
	bool removed;		/* a once=on rule that fired */
	int event;
	int state;		/* 0: any */
	int error;		/* inject-error: errno (0: none) */
	bool once;
	int64_t sector;		/* -1: any */
	unsigned iotypes;
	int new_state;		/* set-state */
};

struct blkdebug {
	pthread_mutex_t lock;
	struct rule *rules;
	size_t n, cap;
	size_t *active;		/* indexes into rules, in match order */
	size_t nactive;
	int state;
};

/* The options of each group and their types (QEMU's QemuOptsList). */
enum opt_type { T_STR, T_NUM, T_BOOL };
struct opt_desc { const char *name; enum opt_type type; };
static const struct opt_desc inject_opts[] = {
	{ "event", T_STR }, { "state", T_NUM }, { "iotype", T_STR }, { "errno", T_NUM },
	{ "sector", T_NUM }, { "once", T_BOOL }, { "immediately", T_BOOL }, { NULL, 0 },
};
static const struct opt_desc set_state_opts[] = {
	{ "event", T_STR }, { "state", T_NUM }, { "new_state", T_NUM }, { NULL, 0 },
};
#define MAX_OPTS 7

/* One group's values as given (last one wins), checked by type. */
struct group {
	bool inject;
	const struct opt_desc *desc;
	char *val[MAX_OPTS];
};

struct blkdebug *blkdebug_new(void)
{
	struct blkdebug *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	s->state = 1;
	return s;
}

void blkdebug_free(struct blkdebug *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->rules);
	free(s->active);
	free(s);
}

int blkdebug_state(const struct blkdebug *s)
{
	return s->state;
}

int blkdebug_event_by_name(const char *name)
{
	for (int i = 0; i < BLKDBG__MAX; i++)
		if (!strcmp(event_names[i], name))
			return i;
	return -1;
}

/* QEMU's qemu_strtou64 (base 0, whole string), as QEMU_OPT_NUMBER parses. */
static bool parse_number(const char *v, uint64_t *out)
{
	char *end;

	if (!*v)
		return false;
	errno = 0;
	*out = strtoull(v, &end, 0);
	return errno == 0 && end != v && *end == '\0';
}

/* QEMU's qapi_bool_parse. */
static bool parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "y"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "n"))
		*out = false;
	else
		return false;
	return true;
}

/* key = value into g: QEMU's qemu_opt_set, which checks names and types at once. */
static int group_set(struct group *g, const char *key, const char *value, char *err,
		     size_t errlen)
{
	uint64_t num;
	bool b;
	int i;

	for (i = 0; g->desc[i].name && strcmp(g->desc[i].name, key); i++)
		;
	if (!g->desc[i].name)
		return block_err(err, errlen, "Invalid parameter '%s'", key);
	if (g->desc[i].type == T_NUM && !parse_number(value, &num))
		return block_err(err, errlen, "Parameter '%s' expects a number", key);
	if (g->desc[i].type == T_BOOL && !parse_bool(value, &b))
		return block_err(err, errlen, "Parameter '%s' expects 'on' or 'off'", key);
	free(g->val[i]);
	g->val[i] = strdup(value);
	return g->val[i] ? 0 : block_err(err, errlen, "out of memory");
}

static const char *group_get(const struct group *g, const char *key)
{
	for (int i = 0; g->desc[i].name; i++)
		if (!strcmp(g->desc[i].name, key))
			return g->val[i];
	return NULL;
}

static uint64_t get_num(const struct group *g, const char *key, uint64_t dflt)
{
	const char *v = group_get(g, key);
	uint64_t n;

	return v && parse_number(v, &n) ? n : dflt;
}

static bool get_bool(const struct group *g, const char *key)
{
	const char *v = group_get(g, key);
	bool b = false;

	return v && parse_bool(v, &b) ? b : false;
}

static void group_clear(struct group *g)
{
	for (int i = 0; i < MAX_OPTS; i++) {
		free(g->val[i]);
		g->val[i] = NULL;
	}
}

static int group_init(struct group *g, const char *name)
{
	memset(g, 0, sizeof(*g));
	if (!strcmp(name, "inject-error")) {
		g->inject = true;
		g->desc = inject_opts;
	} else if (!strcmp(name, "set-state")) {
		g->desc = set_state_opts;
	} else {
		return -1;
	}
	return 0;
}

/* QEMU's add_rule: the group's values as a rule. */
static int group_commit(struct blkdebug *s, const struct group *g, char *err, size_t errlen)
{
	const char *ev = group_get(g, "event"), *io = group_get(g, "iotype");
	struct rule r = { .inject = g->inject, .sector = -1, .iotypes = DEFAULT_IOTYPES };
	uint64_t e;

	if (!ev)
		return block_err(err, errlen, "Missing event name for rule");
	r.event = blkdebug_event_by_name(ev);
	if (r.event < 0)
		return block_err(err, errlen, "invalid parameter value: %s", ev);
	r.state = (int)get_num(g, "state", 0);
	if (g->inject) {
		if (io) {
			int t;
			for (t = 0; t < BLKDBG_IO__MAX && strcmp(iotype_names[t], io); t++)
				;
			if (t == BLKDBG_IO__MAX)
				return block_err(err, errlen, "invalid parameter value: %s", io);
			r.iotypes = 1u << t;
		}
		e = get_num(g, "errno", EIO);
		/* QEMU takes any number and returns its negation; only errnos make sense. */
		if (e > 4095)
			return block_err(err, errlen, "Parameter 'errno' expects an errno value from 0 "
				    "to 4095");
		r.error = (int)e;
		r.once = get_bool(g, "once");
		(void)get_bool(g, "immediately");	/* no effect here: see the top */
		r.sector = (int64_t)get_num(g, "sector", (uint64_t)-1);
	} else {
		r.new_state = (int)get_num(g, "new_state", 0);
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 8;
		struct rule *nr = realloc(s->rules, cap * sizeof(*nr));
		size_t *na = realloc(s->active, cap * sizeof(*na));
		if (nr)
			s->rules = nr;
		if (na)
			s->active = na;
		if (!nr || !na)
			return block_err(err, errlen, "out of memory");
		s->cap = cap;
	}
	s->rules[s->n++] = r;
	return 0;
}

int blkdebug_add_rule(struct blkdebug *s, const char *group, const char *const *keys,
		      const char *const *values, size_t n, char *err, size_t errlen)
{
	struct group g;
	int ret = 0;

	if (group_init(&g, group) < 0)
		return block_err(err, errlen, "There is no option group '%s'", group);
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = group_set(&g, keys[i], values[i], err, errlen);
	if (ret == 0)
		ret = group_commit(s, &g, err, errlen);
	group_clear(&g);
	return ret;
}

/* The parsed groups of a config file, committed in QEMU's order. */
struct parsed {
	struct group *g;
	size_t n, cap;
};

static struct group *parsed_add(struct parsed *p, const char *name, char *err, size_t errlen)
{
	struct group g;

	if (group_init(&g, name) < 0) {
		block_err(err, errlen, "There is no option group '%s'", name);
		return NULL;
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 8;
		struct group *ng = realloc(p->g, cap * sizeof(*ng));
		if (!ng) {
			block_err(err, errlen, "out of memory");
			return NULL;
		}
		p->g = ng;
		p->cap = cap;
	}
	p->g[p->n] = g;
	return &p->g[p->n++];
}

/* "[group]" or "[group "id"]" (the id is QEMU's opts id, unused here). */
static struct group *parse_group_line(struct parsed *p, const char *line, char *err,
				      size_t errlen)
{
	char name[64];
	size_t n = strcspn(line + 1, " \t\"]");

	/* QEMU's sscanf "[%63s \"%63[^\"]\"]", else "[%63[^]]]". */
	if (line[1 + n] == ' ' || line[1 + n] == '\t') {
		const char *q = line + 1 + n + strspn(line + 1 + n, " \t");
		if (*q != '"' || !strchr(q + 1, '"') || strchr(q + 1, '"')[1] != ']')
			n = strcspn(line + 1, "]");
	} else {
		n = strcspn(line + 1, "]");
	}
	if (n > 63)
		n = 63;
	snprintf(name, sizeof(name), "%.*s", (int)n, line + 1);
	return parsed_add(p, name, err, errlen);
}

/* key = "value": QEMU's sscanf " %63s = \"%1023[^\"]\"", value "" when it does not match. */
static int parse_opt_line(struct group *cur, const char *line, char *err, size_t errlen)
{
	char key[64], value[1024];
	const char *p = line + strspn(line, " \t\r\v\f");
	size_t n = strcspn(p, " \t\r\v\f");

	if (!n)
		return block_err(err, errlen, "parse error");
	if (n > 63)
		n = 63;
	snprintf(key, sizeof(key), "%.*s", (int)n, p);
	p += n;
	p += strspn(p, " \t\r\v\f");
	value[0] = '\0';
	if (*p == '=') {
		p++;
		p += strspn(p, " \t\r\v\f");
		if (*p == '"') {
			size_t m = strcspn(p + 1, "\"");
			snprintf(value, sizeof(value), "%.*s", (int)(m > 1023 ? 1023 : m), p + 1);
		}
	}
	if (!cur)
		return block_err(err, errlen, "no group defined");
	return group_set(cur, key, value, err, errlen);
}

static int parse_lines(struct parsed *p, const char *text, size_t len, char *err, size_t errlen)
{
	struct group *cur = NULL;
	size_t pos = 0;
	char line[1100];

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = (nl ? (size_t)(nl - text) : len) - pos;

		/* A NUL inside a line is no text (fgets would cut the line there). */
		if (memchr(text + pos, '\0', n))
			return block_err(err, errlen, "parse error");
		/* Longer lines are cut, as QEMU's 1024-byte fgets buffer would. */
		snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) - 1 ? n : sizeof(line) - 1),
			 text + pos);
		pos += n + 1;
		if (!line[0] || line[0] == '#')
			continue;
		if (line[0] == '[') {
			cur = parse_group_line(p, line, err, errlen);
			if (!cur)
				return -1;
			continue;
		}
		if (parse_opt_line(cur, line, err, errlen) < 0)
			return -1;
	}
	return 0;
}

int blkdebug_parse_config(struct blkdebug *s, const char *text, size_t len, char *err,
			  size_t errlen)
{
	struct parsed p = { 0 };
	int ret = parse_lines(&p, text, len, err, errlen);

	/* QEMU adds every inject-error rule, then every set-state rule. */
	for (int pass = 0; pass < 2 && ret == 0; pass++)
		for (size_t i = 0; i < p.n && ret == 0; i++)
			if (p.g[i].inject == (pass == 0))
				ret = group_commit(s, &p.g[i], err, errlen);
	for (size_t i = 0; i < p.n; i++)
		group_clear(&p.g[i]);
	free(p.g);
	return ret;
}

void blkdebug_event(struct blkdebug *s, enum blkdebug_event ev)
{
	bool injected = false;
	int new_state;

	if ((int)ev < 0 || ev >= BLKDBG__MAX)
		return;
	pthread_mutex_lock(&s->lock);
	new_state = s->state;
	/*
	 * QEMU walks the event's list newest rule first and pushes each match on
	 * the front of the active list: the list ends in the rules' own order.
	 */
	for (size_t i = s->n; i-- > 0;) {
		struct rule *r = &s->rules[i];
		if (r->removed || r->event != (int)ev || (r->state && r->state != s->state))
			continue;
		if (!r->inject) {
			new_state = r->new_state;
			continue;
		}
		if (!injected)
			s->nactive = 0;
		injected = true;
		memmove(s->active + 1, s->active, s->nactive * sizeof(*s->active));
		s->active[0] = i;
		s->nactive++;
	}
	s->state = new_state;
	pthread_mutex_unlock(&s->lock);
}

static bool matches(const struct rule *r, uint64_t off, uint64_t bytes, enum blkdebug_iotype t)
{
	uint64_t at = (uint64_t)r->sector * 512;

	if (!(r->iotypes & (1u << t)))
		return false;
	return r->sector == -1 || (bytes && at / 512 == (uint64_t)r->sector && at >= off &&
				   at - off < bytes);
}

int blkdebug_check(struct blkdebug *s, uint64_t off, uint64_t bytes, enum blkdebug_iotype t)
{
	struct rule *r = NULL;
	size_t i;
	int error;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->nactive; i++) {
		if (matches(&s->rules[s->active[i]], off, bytes, t)) {
			r = &s->rules[s->active[i]];
			break;
		}
	}
	if (!r || !r->error) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	error = r->error;
	if (r->once) {
		r->removed = true;
		memmove(s->active + i, s->active + i + 1, (s->nactive - i - 1) * sizeof(*s->active));
		s->nactive--;
	}
	pthread_mutex_unlock(&s->lock);
	return -error;
}
