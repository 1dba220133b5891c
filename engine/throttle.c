/*
 * throttle.c - token buckets, daily caps, the adaptive window and retry
 * delays (contract in throttle.h).
 *
 * Everything here is arithmetic over the caller's clock (ms): no
 * allocation, no logging, no clock reads, so the scheduler's timers and
 * the tests' fake clock drive it the same way.
 *
 * Time going backwards (a clock stepped back, a test rewinding) never adds
 * tokens: a bucket refills only for time after its last_ms, and a mutating
 * call that sees an earlier clock re-bases last_ms there (the tokens it
 * had are kept, none are added), so counting resumes from the new clock
 * without crediting the same interval twice in real time.
 *
 * What it does not do: decide which limit applies to a destination (the
 * scheduler), or read the clock.
 */
#include "throttle.h"

#include <float.h>
#include <limits.h>
#include <math.h> /* isfinite() only: a macro, so no libm to link */
#include <stddef.h>
#include <string.h>

#define MS_PER_DAY 86400000ULL
/* Slack when comparing token counts: 1e-9 of a token absorbs the rounding
 * of repeated refills (a bucket at 1/d gains ~1.2e-8 tokens per ms, still
 * far above it), so "wait N ms then take" never fails by a hair. */
#define TBUCKET_EPS 1e-9
/* The window never closes below 1/64 of the configured limits: six
 * halvings, enough to go from 64 connections to 1 and from 640/s to 10/s,
 * while a destination is never starved to nothing. */
#define TWINDOW_FLOOR (1.0 / 64)
/* Each growth step reopens a quarter of the configured limits: from the
 * floor back to full in four cohorts, far slower than the halving that
 * closed it (Postfix's "open slowly, close fast"). */
#define TWINDOW_STEP 0.25

/* ceil() for 0 <= x < 2^64, without libm. */
static uint64_t ceil_u64(double x)
{
	uint64_t n = (uint64_t)x;

	return (double)n < x ? n + 1 : n;
}

/* Parse a non-negative decimal "D+[.D*]" or ".D+" prefix of s; *end after
 * it. 0, or -1 when s does not start with one. No sign, exponent, hex,
 * inf or nan (strtod would take them all). */
static int parse_decimal(const char *s, double *v, const char **end)
{
	const char *p = s;
	double x = 0, scale = 1;
	int digits = 0;

	while (*p >= '0' && *p <= '9') {
		x = x * 10 + (*p - '0');
		p++;
		digits++;
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			scale /= 10;
			x += (*p - '0') * scale;
			p++;
			digits++;
		}
	}
	if (digits == 0 || !isfinite(x))
		return -1;
	*v = x;
	*end = p;
	return 0;
}

/* "N/s", "N/m", "N/h", "N/d", "N" (per second), "0" or "unlimited". */
int throttle_parse_rate(const char *s, double *per_sec)
{
	const char *p;
	double n, div;

	if (s == NULL)
		return -1;
	if (strcmp(s, "unlimited") == 0) {
		*per_sec = 0;
		return 0;
	}
	if (parse_decimal(s, &n, &p) < 0)
		return -1;
	if (*p == '\0') {
		div = 1;
	} else {
		if (p[0] != '/' || p[1] == '\0' || p[2] != '\0')
			return -1;
		switch (p[1]) {
		case 's': div = 1; break;
		case 'm': div = 60; break;
		case 'h': div = 3600; break;
		case 'd': div = 86400; break;
		default: return -1;
		}
	}
	*per_sec = n / div;
	return 0;
}

/* Tokens the bucket holds at 'when' (no refill for when <= last_ms). */
static double tbucket_avail(const struct tbucket *b, uint64_t when)
{
	double t = b->tokens;

	if (when > b->last_ms)
		t += (double)(when - b->last_ms) * b->rate / 1000.0;
	return t > b->burst ? b->burst : t;
}

/* Move the bucket to 'now': refill, or re-base when the clock went back. */
static void tbucket_advance(struct tbucket *b, uint64_t now_ms)
{
	b->tokens = tbucket_avail(b, now_ms);
	b->last_ms = now_ms;
}

/* Full bucket; burst 0 means one second's worth, at least one token. */
void tbucket_init(struct tbucket *b, double rate, double burst,
                  uint64_t now_ms)
{
	if (!(rate > 0) || !isfinite(rate))
		rate = 0;
	if (!(burst > 0) || !isfinite(burst))
		burst = rate;
	if (burst < 1)
		burst = 1;
	b->rate = rate;
	b->burst = burst;
	b->tokens = burst;
	b->last_ms = now_ms;
}

/* New rate from now on: tokens earned so far at the old rate are kept
 * (never above the burst). The burst stays as configured at init. */
void tbucket_set_rate(struct tbucket *b, double rate, uint64_t now_ms)
{
	if (!(rate > 0) || !isfinite(rate))
		rate = 0;
	tbucket_advance(b, now_ms);
	b->rate = rate;
}

/* Take one token if there is one. */
int tbucket_take(struct tbucket *b, uint64_t now_ms)
{
	if (b->rate <= 0) {
		b->last_ms = now_ms;
		return 1;
	}
	tbucket_advance(b, now_ms);
	if (b->tokens + TBUCKET_EPS < 1)
		return 0;
	b->tokens -= 1;
	if (b->tokens < 0)
		b->tokens = 0; /* only the EPS slack can get here */
	return 1;
}

/* Whole tokens now, with take()'s EPS slack. */
unsigned tbucket_whole(const struct tbucket *b, uint64_t now_ms)
{
	double t;

	if (b->rate <= 0)
		return UINT_MAX;
	t = tbucket_avail(b, now_ms) + TBUCKET_EPS;
	return t >= (double)UINT_MAX ? UINT_MAX : (unsigned)t;
}

/*
 * The smallest d such that tbucket_take(b, now_ms + d) would succeed
 * (UINT64_MAX when that is beyond any clock). An estimate from the rate,
 * then corrected by a millisecond either way with the very refill
 * arithmetic take() uses, so the answer is exact, not off by rounding.
 */
uint64_t tbucket_wait_ms(const struct tbucket *b, uint64_t now_ms)
{
	uint64_t base, d;
	double need;
	uint64_t est;

	if (b->rate <= 0 || tbucket_avail(b, now_ms) + TBUCKET_EPS >= 1)
		return 0;
	/* A clock behind last_ms earns nothing until it passes last_ms. */
	base = now_ms < b->last_ms ? b->last_ms : now_ms;
	need = 1 - tbucket_avail(b, base) - TBUCKET_EPS;
	need = need * 1000.0 / b->rate;
	if (!(need < 1.8e19)) /* 2^64 is ~1.845e19 */
		return UINT64_MAX;
	est = ceil_u64(need);
	if (est > UINT64_MAX - base)
		return UINT64_MAX;
	d = base - now_ms + est;
	while (tbucket_avail(b, now_ms + d) + TBUCKET_EPS < 1)
		d++;
	while (d > 0 && tbucket_avail(b, now_ms + d - 1) + TBUCKET_EPS >= 1)
		d--;
	return d;
}

/* One more today (UTC)? Counts it when so. */
int tdaily_take(struct tdaily *d, uint64_t now_ms)
{
	int64_t day = (int64_t)(now_ms / MS_PER_DAY);

	/* A new day resets the count; a clock stepped back into an earlier
	 * day keeps counting against the later one (never more than the
	 * limit in any real day). */
	if (day > d->day) {
		d->day = day;
		d->count = 0;
	}
	if (d->limit != 0 && d->count >= d->limit)
		return 0;
	d->count++;
	return 1;
}

/* 0 when tdaily_take() would succeed now, else ms until the UTC day whose
 * start resets the count. */
uint64_t tdaily_wait_ms(const struct tdaily *d, uint64_t now_ms)
{
	int64_t day = (int64_t)(now_ms / MS_PER_DAY);

	if (d->limit == 0 || day > d->day || d->count < d->limit)
		return 0;
	return (uint64_t)(d->day + 1) * MS_PER_DAY - now_ms;
}

/* Fully open, never cut, not paused. */
void twindow_init(struct twindow *w)
{
	memset(w, 0, sizeof *w);
	w->factor = 1;
}

/* Slow-down: pause; halve unless cut within the period or at the floor. */
int twindow_slowdown(struct twindow *w, const struct twindow_policy *p,
                     uint64_t now_ms)
{
	uint64_t until = now_ms + p->pause_ms;

	if (until < now_ms)
		until = UINT64_MAX;
	if (until > w->paused_until)
		w->paused_until = until;
	w->successes = 0;
	/* cuts, not last_cut_ms, says "ever cut": a fake clock may cut at 0.
	 * A clock behind the last cut counts as within the period. */
	if (w->cuts > 0 && (now_ms < w->last_cut_ms ||
	                    now_ms - w->last_cut_ms < p->period_ms))
		return 0;
	if (w->factor <= TWINDOW_FLOOR)
		return 0;
	w->factor /= 2;
	if (w->factor < TWINDOW_FLOOR)
		w->factor = TWINDOW_FLOOR;
	w->last_cut_ms = now_ms;
	w->cuts++;
	return 1;
}

/* Success: every cohort-th one (cohort 0 counts as 1) reopens a step. */
int twindow_success(struct twindow *w, const struct twindow_policy *p)
{
	unsigned cohort = p->cohort > 0 ? p->cohort : 1;

	if (w->factor >= 1)
		return 0;
	if (++w->successes < cohort)
		return 0;
	w->successes = 0;
	w->factor += TWINDOW_STEP;
	if (w->factor > 1)
		w->factor = 1;
	return 1;
}

int twindow_paused(const struct twindow *w, uint64_t now_ms)
{
	return w->paused_until != 0 && now_ms < w->paused_until;
}

/* floor(configured * factor), at least 1; 0 stays 0 (nothing to scale). */
unsigned twindow_scale(const struct twindow *w, unsigned configured)
{
	double v;

	if (configured == 0)
		return 0;
	v = (double)configured * w->factor;
	if (v < 1)
		return 1;
	if (v > configured)
		return configured;
	return (unsigned)v; /* truncation: rounds down */
}

/* Exponential backoff with a cap and +-jitter (see throttle.h). */
uint64_t throttle_retry_delay(unsigned attempt, uint64_t first_ms,
                              uint64_t max_ms, double jitter, double r)
{
	unsigned shift = attempt > 1 ? attempt - 1 : 0;
	uint64_t base;
	double d, lo;

	if (!(jitter > 0))
		jitter = 0;
	if (jitter > 1)
		jitter = 1;
	if (!(r > 0))
		r = 0;
	if (r >= 1)
		r = 1 - DBL_EPSILON / 2; /* the largest double below 1 */
	if (shift >= 64 || first_ms > (UINT64_MAX >> shift))
		base = UINT64_MAX;
	else
		base = first_ms << shift;
	if (max_ms != 0 && base > max_ms)
		base = max_ms;
	d = (double)base * (1 + jitter * (2 * r - 1));
	lo = (double)first_ms * (1 - jitter);
	if (d < lo)
		d = lo;
	if (!(d < 1.8e19)) /* 2^64 is ~1.845e19 */
		return UINT64_MAX;
	return (uint64_t)(d + 0.5);
}
