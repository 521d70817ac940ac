// Calls to sdrt's API with the credentials the page asked for (kept in sessionStorage, per tab), and
// errors as the text of the API's 4xx bodies.

const STORE = "sdrt-authorization";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function authorization() {
  return sessionStorage.getItem(STORE);
}

// What the server expects (serve/auth.py): "Bearer KEY", or "Basic ..." for --api-auth user:pass.
export function candidates(secret) {
  const found = [`Bearer ${secret}`];
  if (secret.includes(":")) found.push(`Basic ${btoa(secret)}`);
  return found;
}

export async function useSecret(secret) {
  for (const header of candidates(secret)) {
    const response = await fetch("/sdapi/v1/sd-models", { headers: { Authorization: header } });
    if (response.ok) {
      sessionStorage.setItem(STORE, header);
      return true;
    }
  }
  return false;
}

export async function call(method, path, body) {
  const headers = {};
  const auth = authorization();
  if (auth) headers.Authorization = auth;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new ApiError(response.status, await errorText(response));
  return response.json();
}

// A1111 routes answer {error, detail, field}; OpenAI routes {error: {message, param}}.
async function errorText(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    return `${response.status} ${response.statusText}`;
  }
  const error = body && typeof body.error === "object" ? body.error : body || {};
  const message = error.detail || error.message || JSON.stringify(body);
  const field = error.field || error.param;
  return field && !message.includes(field) ? `${field}: ${message}` : message;
}
