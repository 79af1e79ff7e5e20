/* See body_rewrite.h. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "body_rewrite.h"

#define MAX_EDITS 16

struct edit {
	size_t start, end;	/* bytes of the body replaced */
	int what;		/* 0 model, 1 the budget, 2 insert ,"max_tokens":B */
};

static size_t skip_ws(const char *s, size_t i, size_t n)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/* s[i] is '"': the index after the closing quote, or n. */
static size_t skip_string(const char *s, size_t i, size_t n)
{
	for (i++; i < n; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return n;
}

static size_t skip_value(const char *s, size_t i, size_t n)
{
	if (i >= n)
		return n;
	if (s[i] == '"')
		return skip_string(s, i, n);
	if (s[i] == '{' || s[i] == '[') {
		int depth = 0;

		while (i < n) {
			if (s[i] == '"') {
				i = skip_string(s, i, n);
				continue;
			}
			if (s[i] == '{' || s[i] == '[')
				depth++;
			else if ((s[i] == '}' || s[i] == ']') && --depth == 0)
				return i + 1;
			i++;
		}
		return n;
	}
	while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
	       s[i] != '\n' && s[i] != '\r')
		i++;
	return i;
}

static bool key_is(const char *s, size_t start, size_t end, const char *key)
{
	size_t len = strlen(key);

	return end - start == len + 2 && !memcmp(s + start + 1, key, len);
}

/* The top-level keys to change, in order. -1: not an object we can edit. */
static int find_edits(const char *s, size_t n, struct edit *e)
{
	int count = 0, first_model = -1;
	bool budget_key = false;
	size_t i = skip_ws(s, 0, n);

	if (i >= n || s[i] != '{')
		return -1;
	i = skip_ws(s, i + 1, n);
	while (i < n && s[i] != '}') {
		if (s[i] != '"')
			return -1;
		size_t ks = i, ke = skip_string(s, i, n);
		i = skip_ws(s, ke, n);
		if (i >= n || s[i] != ':')
			return -1;
		i = skip_ws(s, i + 1, n);
		size_t vs = i, ve = skip_value(s, i, n);
		if (ve >= n)
			return -1;
		int what = key_is(s, ks, ke, "model") ? 0 :
			   key_is(s, ks, ke, "max_tokens") || key_is(s, ks, ke, "max_completion_tokens") ? 1 : -1;
		if (what >= 0) {
			if (count == MAX_EDITS)
				return -1;
			if (what == 0 && first_model < 0)
				first_model = count;
			budget_key |= what == 1;
			e[count++] = (struct edit){ vs, ve, what };
		}
		i = skip_ws(s, ve, n);
		if (i < n && s[i] == ',')
			i = skip_ws(s, i + 1, n);
		else if (i < n && s[i] != '}')
			return -1;
	}
	if (i >= n || first_model < 0)
		return -1;
	if (!budget_key) {	/* after the first "model" value */
		if (count == MAX_EDITS)
			return -1;
		size_t at = e[first_model].end;
		memmove(&e[first_model + 2], &e[first_model + 1],
			sizeof(e[0]) * (size_t)(count - first_model - 1));
		e[first_model + 1] = (struct edit){ at, at, 2 };
		count++;
	}
	return count;
}

size_t body_rewrite(const char *body, size_t len, const char *model, unsigned budget, char *out,
		      size_t cap)
{
	struct edit e[MAX_EDITS];
	int n = find_edits(body, len, e);
	size_t pos = 0, w = 0;
	char num[16];
	int numlen = snprintf(num, sizeof(num), "%u", budget);

#define PUT(p, l) do { size_t l_ = (l); if (l_ && w + l_ <= cap) memcpy(out + w, (p), l_); w += l_; } while (0)
	if (n < 0)
		return 0;
	for (int k = 0; k < n; k++) {
		PUT(body + pos, e[k].start - pos);
		if (e[k].what == 0) {
			PUT("\"", 1);
			PUT(model, strlen(model));
			PUT("\"", 1);
		} else if (e[k].what == 1) {
			PUT(num, (size_t)numlen);
		} else {
			PUT(",\"max_tokens\":", 14);
			PUT(num, (size_t)numlen);
		}
		pos = e[k].end;
	}
	PUT(body + pos, len - pos);
#undef PUT
	return w;
}
