// Fails when openapi-typescript could not type a documented body: walks every operation of the
// generated `paths` (request bodies and every response's content, through nested properties,
// array items and index signatures) with the TypeScript checker and reports `any`, `unknown`
// and empty objects (`{}` / `Record<string, never>`, what a bare `{"type": "object"}` becomes).
// Usage: node check-types.mjs gen/schema.d.ts
import ts from "typescript";

const file = process.argv[2];
const program = ts.createProgram([file], { strict: true, noEmit: true });
const checker = program.getTypeChecker();
const source = program.getSourceFile(file);
const pathsDecl = source.statements.find((s) => ts.isInterfaceDeclaration(s) && s.name.text === "paths");
if (!pathsDecl) {
  console.error(`FAIL: no \`paths\` interface in ${file}`);
  process.exit(1);
}

const problems = [];
let bodies = 0;
const prop = (type, name) => {
  const sym = type.getProperty(name);
  if (!sym) return undefined;
  const t = checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(sym, pathsDecl));
  return t.flags & ts.TypeFlags.Never ? undefined : t;
};
const props = (type) =>
  type.getProperties().map((s) => [s.name, checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(s, pathsDecl))]);

// Reports the first untyped spot inside `type`, reached by `where`.
function inspect(type, where, seen = new Set()) {
  if (seen.has(type)) return;
  seen.add(type);
  if (type.flags & ts.TypeFlags.Any) return problems.push(`${where}: any`);
  if (type.flags & ts.TypeFlags.Unknown) return problems.push(`${where}: unknown`);
  if (type.isUnion() || type.isIntersection()) {
    for (const t of type.types) inspect(t, where, seen);
    return;
  }
  if (!(type.flags & ts.TypeFlags.Object)) return;  // string, number, literals, null
  if (checker.isArrayType(type)) return inspect(checker.getTypeArguments(type)[0], `${where}[]`, seen);
  const indexes = checker.getIndexInfosOfType(type);
  const own = props(type);
  if (own.length === 0 && indexes.every((i) => i.type.flags & ts.TypeFlags.Never))
    return problems.push(`${where}: an empty object (a schema with no properties)`);
  for (const [name, t] of own) inspect(t, `${where}.${name}`, seen);
  for (const i of indexes) inspect(i.type, `${where}[key]`, seen);
}

const pathsType = checker.getTypeAtLocation(pathsDecl);
for (const [path, item] of props(pathsType)) {
  for (const method of ["get", "put", "post", "patch", "delete"]) {
    const op = prop(item, method);
    if (!op) continue;
    const request = prop(op, "requestBody");
    const requestContent = request && prop(request, "content");
    for (const [media, body] of requestContent ? props(requestContent) : []) {
      bodies++;
      inspect(body, `${method.toUpperCase()} ${path} request ${media}`);
    }
    const responses = prop(op, "responses");
    for (const [status, response] of responses ? props(responses) : []) {
      const content = prop(response, "content");
      for (const [media, body] of content ? props(content) : []) {
        bodies++;
        inspect(body, `${method.toUpperCase()} ${path} ${status} ${media}`);
      }
    }
  }
}
if (bodies < 50) problems.push(`only ${bodies} documented bodies found: the walk is broken`);
if (problems.length) {
  console.error("FAIL: bodies the generated client cannot type:\n  " + problems.join("\n  "));
  process.exit(1);
}
console.log(`OK: ${bodies} documented bodies, every one typed (no any, unknown or empty object)`);
