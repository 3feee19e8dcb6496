// The YAML language server's own validation, completion and hover (the code
// editors run), over documents given on stdin as JSON:
//   {"schema": "/abs/path.json", "docs": [["name", "yaml text"], ...]}
// Prints {"diagnostics": {"name": ["message", ...]}, "completion": [...],
// "hover": "..."}; the last two for a probe document (tests/it/schema_editor.rs).
const { getLanguageService } = require('yaml-language-server');
const { TextDocument } = require('vscode-languageserver-textdocument');
const fs = require('fs');
const { URL, fileURLToPath, pathToFileURL } = require('url');

const ls = getLanguageService({
  schemaRequestService: (uri) => Promise.resolve(fs.readFileSync(fileURLToPath(uri), 'utf8')),
  workspaceContext: { resolveRelativePath: (rel, base) => new URL(rel, base).toString() },
});
ls.configure({ validate: true, completion: true, hover: true, schemas: [] });

async function main() {
  const input = JSON.parse(fs.readFileSync(0, 'utf8'));
  const modeline = `# yaml-language-server: $schema=${pathToFileURL(input.schema)}\n`;
  const doc = (name, text) =>
    TextDocument.create(`file:///docs/${encodeURIComponent(name)}.yaml`, 'yaml', 1, modeline + text);
  const diagnostics = {};
  for (const [name, text] of input.docs) {
    const found = await ls.doValidation(doc(name, text), false);
    diagnostics[name] = found.map((d) => `${d.range.start.line}: ${d.message}`);
  }
  // The probe: values offered after `strategy: `, and `drain`'s hover.
  const probe = doc('probe', 'app: shop\nstrategy: \ndrain: 2s\n');
  const completion = (await ls.doComplete(probe, { line: 2, character: 10 }, false)).items;
  const hover = await ls.doHover(probe, { line: 3, character: 2 });
  console.log(JSON.stringify({
    diagnostics,
    completion: completion.map((i) => i.label),
    hover: hover ? hover.contents.value : '',
  }));
}
main().catch((e) => { console.error(e); process.exit(1); });
