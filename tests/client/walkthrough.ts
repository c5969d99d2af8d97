// README "Walk-through", run through a client generated from openapi/openapi.json
// (openapi-typescript types + openapi-fetch) against the real binary: sign-up, sign-in, own
// record, favorite add/list/read/remove, the 404 and 409 error bodies read through their typed
// schemas, sign-out, then 401. Every body is also checked at run time against the schema the
// document gives for its status, so a type that lies (a wrong nullable, a missing field) fails.
// Compiled under `strict` by run.sh; FAV_BASE_URL names the running service.
import createClient from "openapi-fetch";
import type { paths } from "./gen/schema.js";

declare const process: { env: Record<string, string | undefined>; exitCode?: number };

// The JSON body a path/method documents for one status (never when it documents none).
type Body<P extends keyof paths, M extends keyof paths[P], S extends number> = paths[P][M] extends {
  responses: infer R;
}
  ? S extends keyof R
    ? R[S] extends { content: { "application/json": infer B } }
      ? B
      : never
    : never
  : never;
// Compile-time guards: a body typed `any` or `unknown`, or not documented (never), does not compile below.
type Typed<T> = [T] extends [never] ? "never" : 0 extends 1 & T ? "any" : unknown extends T ? "unknown" : "typed";
const typed = <T>(_: Typed<T> extends "typed" ? true : never) => {};

type AddNotFound = Body<"/customers/{id}/favorites/{product_id}", "post", 404>;
type AddConflict = Body<"/customers/{id}/favorites/{product_id}", "post", 409>;
type SignUpConflict = Body<"/auth/sign-up", "post", 409>;
type ReadUnauthorized = Body<"/customers/{id}", "get", 401>;
type Favorite = Body<"/customers/{id}/favorites/{product_id}", "get", 200>;
typed<AddNotFound>(true);
typed<AddConflict>(true);
typed<SignUpConflict>(true);
typed<ReadUnauthorized>(true);
typed<Favorite>(true);
// The codes the README walks through are values of the documented `detail` of those statuses.
const productNotFound: AddNotFound["detail"] = "product_not_found";
const alreadyFavorite: AddConflict["detail"] = "product_already_in_favorites";
const emailTaken: SignUpConflict["detail"] = "email_already_exists";
const invalidToken: ReadUnauthorized["detail"] = "invalid_token";

const base = process.env.FAV_BASE_URL;
if (!base) throw new Error("FAV_BASE_URL is not set");
const api = createClient<paths>({ baseUrl: base });

// --- run-time conformance to the document's schemas -----------------------------------------
type Schema = {
  $ref?: string;
  type?: string;
  nullable?: boolean;
  enum?: unknown[];
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  allOf?: Schema[];
  format?: string;
};
type Document = { components: { schemas: Record<string, Schema>; responses: Record<string, { content?: Record<string, { schema: Schema }> }> }; paths: Record<string, Record<string, { responses: Record<string, { $ref?: string; content?: Record<string, { schema: Schema }> }> }>> };
let doc: Document;

function conforms(value: unknown, schema: Schema, where: string, errors: string[]): void {
  if (schema.$ref) return conforms(value, doc.components.schemas[schema.$ref.split("/").pop()!]!, where, errors);
  for (const part of schema.allOf ?? []) conforms(value, part, where, errors);
  if (value === null) {
    if (!schema.nullable && schema.type) errors.push(`${where}: null, but the schema is not nullable`);
    return;
  }
  if (schema.enum && !schema.enum.includes(value)) errors.push(`${where}: ${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`);
  const kind = Array.isArray(value) ? "array" : Number.isInteger(value) ? "integer" : typeof value;
  if (schema.type && !(schema.type === kind || (schema.type === "number" && kind === "integer")))
    errors.push(`${where}: a ${kind}, the schema says ${schema.type}`);
  if (kind === "array") (value as unknown[]).forEach((v, i) => schema.items && conforms(v, schema.items, `${where}[${i}]`, errors));
  if (kind === "object") {
    const obj = value as Record<string, unknown>;
    for (const r of schema.required ?? []) if (!(r in obj)) errors.push(`${where}: required ${r} missing`);
    for (const [k, v] of Object.entries(obj)) {
      const p = schema.properties?.[k];
      if (p) conforms(v, p, `${where}.${k}`, errors);
      else if (schema.properties && schema.additionalProperties === false) errors.push(`${where}: ${k} not documented`);
    }
  }
}

// The documented JSON schema of (path, method, status); fails when the status is not documented.
function documented(path: string, method: string, status: number): Schema {
  let r = doc.paths[path]?.[method]?.responses[String(status)];
  if (!r) throw new Error(`${method.toUpperCase()} ${path} answered ${status}, which the document does not list`);
  if (r.$ref) r = doc.components.responses[r.$ref.split("/").pop()!]!;
  const schema = r.content?.["application/json"]?.schema;
  if (!schema) throw new Error(`${method.toUpperCase()} ${path} ${status}: no JSON schema documented`);
  return schema;
}

function check(path: string, method: string, response: Response, body: unknown, want: number): void {
  if (response.status !== want) throw new Error(`${method.toUpperCase()} ${path}: ${response.status}, expected ${want}: ${JSON.stringify(body)}`);
  if (want !== 204) {
    const errors: string[] = [];
    conforms(body, documented(path, method, want), `${method.toUpperCase()} ${path} ${want}`, errors);
    if (errors.length) throw new Error("body does not match the document:\n  " + errors.join("\n  "));
  }
  console.log(`ok  ${method.toUpperCase()} ${path} -> ${want}`);
}

function equal<T>(got: T, want: T, what: string): void {
  if (got !== want) throw new Error(`${what}: ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
}

async function main(): Promise<void> {
  const docs = await api.GET("/openapi.json");
  if (!docs.data) throw new Error(`GET /openapi.json: ${docs.response.status}`);
  doc = docs.data as unknown as Document;
  check("/openapi.json", "get", docs.response, docs.data, 200);
  equal(docs.data.info.title.length > 0, true, "document title");

  // 1. Sign up: the customer's id.
  const email = `walkthrough-${Date.now()}-${Math.floor(Math.random() * 1e9)}@aiqfome.com`;
  const password = "minhasenhasupersegura2025";
  const up = await api.POST("/auth/sign-up", { body: { email, name: "Gabriel Cenciati", password } });
  check("/auth/sign-up", "post", up.response, up.data ?? up.error, 201);
  const id: string = up.data!.id;

  // The same email again: 409, read through the documented 409 body.
  const again = await api.POST("/auth/sign-up", { body: { email, name: "Gabriel", password } });
  check("/auth/sign-up", "post", again.response, again.error, 409);
  const conflict = again.error as SignUpConflict;
  equal(conflict.detail, emailTaken, "sign-up 409 detail");

  // 2. Sign in: an access token.
  const signIn = await api.POST("/auth/sign-in", { body: { email, password } });
  check("/auth/sign-in", "post", signIn.response, signIn.data ?? signIn.error, 200);
  const token: string = signIn.data!.access_token;
  equal(signIn.data!.token_type, "bearer", "token_type");
  const auth = { headers: { Authorization: `Bearer ${token}` } };
  const self = { params: { path: { id } }, ...auth };

  // 3. Your own account.
  const me = await api.GET("/customers/{id}", self);
  check("/customers/{id}", "get", me.response, me.data ?? me.error, 200);
  equal(me.data!.email, email, "own email");

  // 5. Favorite a product, list, read one, remove.
  const fav = { params: { path: { id, product_id: 5 } }, ...auth };
  const added = await api.POST("/customers/{id}/favorites/{product_id}", fav);
  check("/customers/{id}/favorites/{product_id}", "post", added.response, added.data ?? added.error, 201);
  equal(added.data!.id, 5, "added product id");

  const twice = await api.POST("/customers/{id}/favorites/{product_id}", fav);
  check("/customers/{id}/favorites/{product_id}", "post", twice.response, twice.error, 409);
  equal((twice.error as AddConflict).detail, alreadyFavorite, "add 409 detail");

  const list = await api.GET("/customers/{id}/favorites", { params: { path: { id }, query: { page: 1, per_page: 20 } }, ...auth });
  check("/customers/{id}/favorites", "get", list.response, list.data ?? list.error, 200);
  equal(list.data!.data.map((f) => f.id).join(","), "5", "listed favorites");
  equal(list.data!.pagination.total_items, 1, "total_items");

  const one = await api.GET("/customers/{id}/favorites/{product_id}", fav);
  check("/customers/{id}/favorites/{product_id}", "get", one.response, one.data ?? one.error, 200);
  const item: Favorite = one.data!;
  equal(item.title, added.data!.title, "read favorite title");

  const removed = await api.DELETE("/customers/{id}/favorites/{product_id}", fav);
  check("/customers/{id}/favorites/{product_id}", "delete", removed.response, removed.error, 204);

  // 6. A product the catalog does not have: 404 product_not_found.
  const missing = await api.POST("/customers/{id}/favorites/{product_id}", { params: { path: { id, product_id: 9999 } }, ...auth });
  check("/customers/{id}/favorites/{product_id}", "post", missing.response, missing.error, 404);
  equal((missing.error as AddNotFound).detail, productNotFound, "add 404 detail");

  // 7. Sign out: the token is revoked; using it again gives 401 invalid_token.
  const out = await api.POST("/auth/sign-out", auth);
  check("/auth/sign-out", "post", out.response, out.error, 204);
  const after = await api.GET("/customers/{id}", self);
  check("/customers/{id}", "get", after.response, after.error, 401);
  equal((after.error as ReadUnauthorized).detail, invalidToken, "401 detail after sign-out");
  console.log("OK: the README walk-through through the generated client");
}

main().catch((e: unknown) => {
  console.error(`FAIL: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
