/* See proxy_reply.h. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include "proxy_reply.h"

const char *reply_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	}
	return "Unknown";
}

const char *reply_error_type(int status)
{
	if (status == 404)
		return "not_found_error";
	if (status < 500)
		return "invalid_request_error";
	return "server_error";
}

bool reply_message(struct sbuf *out, int status, const char *content_type, const char *body,
		   size_t body_len, const struct reply_ids *ids, bool close, const char *extra_headers)
{
	char budget[40] = "";

	if (ids->budget)
		snprintf(budget, sizeof(budget), "x-erg-budget: %u\r\n", ids->budget);
	bool ok = sbuf_printf(out,
			      "HTTP/1.1 %d %s\r\n"
			      "content-type: %s\r\n"
			      "content-length: %zu\r\n"
			      "x-erg-request-id: %s\r\n"
			      "x-erg-model: %s\r\n"
			      "x-erg-worker: %s\r\n"
			      "%s%s%s\r\n",
			      status, reply_reason(status), content_type, body_len, ids->request_id,
			      ids->model[0] ? ids->model : "-", ids->worker[0] ? ids->worker : "erg", budget,
			      close ? "connection: close\r\n" : "", extra_headers ? extra_headers : "");

	return ok && sbuf_add(out, body, body_len);
}

bool reply_error(struct sbuf *out, int status, const char *message, const char *code,
		 const struct reply_ids *ids, bool close, const char *extra_headers)
{
	cJSON *root = cJSON_CreateObject(), *error = cJSON_CreateObject();
	char *body;
	bool ok;

	if (!root || !error) {
		cJSON_Delete(root);
		cJSON_Delete(error);
		return false;
	}
	cJSON_AddItemToObject(root, "error", error);
	cJSON_AddStringToObject(error, "message", message);
	cJSON_AddStringToObject(error, "type", reply_error_type(status));
	cJSON_AddStringToObject(error, "code", code);
	body = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!body)
		return false;
	ok = reply_message(out, status, "application/json", body, strlen(body), ids, close,
			   extra_headers);
	free(body);
	return ok;
}

char *reply_models_body(const struct serve_config *cfg)
{
	cJSON *root = cJSON_CreateObject(), *data;
	char *body;

	if (!root)
		return NULL;
	cJSON_AddStringToObject(root, "object", "list");
	data = cJSON_AddArrayToObject(root, "data");
	for (size_t i = 0; data && i < cfg->n_models; i++) {
		cJSON *m = cJSON_CreateObject();

		if (!m)
			break;
		cJSON_AddStringToObject(m, "id", cfg->models[i].name);
		cJSON_AddStringToObject(m, "object", "model");
		cJSON_AddNumberToObject(m, "created", 0);
		cJSON_AddStringToObject(m, "owned_by", "erg");
		cJSON_AddItemToArray(data, m);
	}
	/* erg picks model and budget: among every model, or a pool's */
	for (size_t i = 0; data && cfg->steering && i <= cfg->n_pools; i++) {
		cJSON *m = cJSON_CreateObject();

		if (!m)
			break;
		cJSON_AddStringToObject(m, "id", i == 0 ? "auto" : cfg->pools[i - 1].name);
		cJSON_AddStringToObject(m, "object", "model");
		cJSON_AddNumberToObject(m, "created", 0);
		cJSON_AddStringToObject(m, "owned_by", "erg");
		cJSON_AddItemToArray(data, m);
	}
	body = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return body;
}
