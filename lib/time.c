/* time.c: timestamps. Events use UTC with milliseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "orch.h"

void orch_now_iso(char buf[32])
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

double orch_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

double orch_wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 2025-10-22T10:00:00[.123][Z], or a date alone. */
int orch_parse_iso(const char *s, double *epoch)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *r = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!r) {
		memset(&tm, 0, sizeof tm);
		r = strptime(s, "%Y-%m-%d", &tm);
		if (!r || *r)
			return -1;
	}
	double frac = 0;
	if (*r == '.') {
		double scale = 0.1;
		for (r++; *r >= '0' && *r <= '9'; r++, scale /= 10)
			frac += (*r - '0') * scale;
	}
	if (*r == 'Z')
		r++;
	if (*r)
		return -1;
	*epoch = (double)timegm(&tm) + frac;
	return 0;
}

double orch_parse_age(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || !(v >= 0 && v < 1e15) || (*end && end[1]))
		return -1;
	switch (*end) {
	case 0: case 's': return v;
	case 'm': return v * 60;
	case 'h': return v * 3600;
	case 'd': return v * 86400;
	case 'w': return v * 7 * 86400;
	}
	return -1;
}
