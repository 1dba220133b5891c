/*
 * throttle.h - the shaping primitives, as plain data with pure functions
 * over a caller-given clock (ms): token buckets for message and connect
 * rates, a daily cap, and the adaptive window that shrinks a destination's
 * connections and rate on "slow down" and reopens gradually (Postfix
 * qmgr's feedback, KumoMTA's suspend-on-throttle). The scheduler owns the
 * structs and asks them; nothing here allocates, logs or reads a clock.
 */
#ifndef EDM_THROTTLE_H
#define EDM_THROTTLE_H

#include <stdint.h>

/* A rate in events per second; 0 = unlimited. */
/* Parse "20/s", "10/m", "500/h", "50000/d", "20" (= per second),
 * "0"/"unlimited". 0 and *per_sec, or -1. The number is plain decimal
 * ("0.5/s" is fine; no sign, exponent, hex, inf or nan), the unit one of
 * lowercase s m h d, with no blanks anywhere (the config reader trims). */
int throttle_parse_rate(const char *s, double *per_sec);

/* Token bucket: 'rate' tokens per second, at most 'burst' stored. */
struct tbucket {
	double rate;      /* 0 = unlimited: take always succeeds */
	double burst;     /* >= 1 */
	double tokens;
	uint64_t last_ms;
};

/* Start full. burst 0 = one second's worth (at least 1). */
void tbucket_init(struct tbucket *b, double rate, double burst,
                  uint64_t now_ms);

/* Change the rate (adaptive backoff), keeping the tokens (capped). */
void tbucket_set_rate(struct tbucket *b, double rate, uint64_t now_ms);

/* Take one token: 1 taken, 0 empty. */
int tbucket_take(struct tbucket *b, uint64_t now_ms);

/* ms until one token is available (0 = now). */
uint64_t tbucket_wait_ms(const struct tbucket *b, uint64_t now_ms);

/* Whole tokens available now, taking none (UINT_MAX when unlimited). */
unsigned tbucket_whole(const struct tbucket *b, uint64_t now_ms);

/* Daily cap in the UTC day of the clock: limit 0 = none. */
struct tdaily {
	uint64_t limit;
	uint64_t count;
	int64_t day;      /* now_ms / 86400000 of the count */
};

/* 1 when one more is allowed (and counts it), 0 when the cap is reached. */
int tdaily_take(struct tdaily *d, uint64_t now_ms);
/* 0 when tdaily_take() would allow one now; else ms until the next UTC
 * day starts (the one that resets the count). */
uint64_t tdaily_wait_ms(const struct tdaily *d, uint64_t now_ms);

/*
 * Adaptive window over a destination's configured limits: 'factor' scales
 * connections and rate, between 1/64 and 1. A slow-down signal halves it
 * at most once per 'period_ms' (several connections hearing the same 421
 * count once) and pauses the destination for 'pause_ms'; every 'cohort'
 * successes afterwards grow it back by a quarter of the configured value
 * (gradual recovery) until 1.
 */
struct twindow {
	double factor;          /* current share of the configured limits */
	uint64_t last_cut_ms;   /* when it was last halved (0 = never) */
	uint64_t paused_until;  /* ms; 0 = not paused */
	unsigned successes;     /* since the last change */
	unsigned cuts;          /* total halvings (for logs) */
};

struct twindow_policy {
	uint64_t period_ms;     /* default 60000: one cut per minute at most */
	uint64_t pause_ms;      /* default 60000 */
	unsigned cohort;        /* default 50 successes per growth step */
};

void twindow_init(struct twindow *w);

/* A slow-down reply: 1 when the window was cut now, 0 when within the
 * period of the last cut (only the pause is extended). */
int twindow_slowdown(struct twindow *w, const struct twindow_policy *p,
                     uint64_t now_ms);

/* A success: 1 when the window grew now. */
int twindow_success(struct twindow *w, const struct twindow_policy *p);

/* 1 while paused. */
int twindow_paused(const struct twindow *w, uint64_t now_ms);

/* The configured limit scaled by the window (rounded down), at least 1
 * (for counts); configured 0 (none) stays 0. */
unsigned twindow_scale(const struct twindow *w, unsigned configured);

/*
 * Retry delay before attempt number 'attempt' + 1 (attempt >= 1 failed):
 * first_ms * 2^(attempt-1), capped at max_ms, then spread by +-jitter
 * (0..1, e.g. 0.2) using r in [0, 1) from the caller's random source, and
 * never below first_ms for attempt 1 minus the jitter (greylisting wants
 * >= 5 min: the caller's first_ms carries that). max_ms 0 = no cap;
 * attempt 0 counts as 1; jitter and r are clamped to their ranges.
 */
uint64_t throttle_retry_delay(unsigned attempt, uint64_t first_ms,
                              uint64_t max_ms, double jitter, double r);

#endif
