import { createRequire } from 'node:module';
import { Language, Parser } from 'web-tree-sitter';

/**
 * PowerShell syntax check for generated scripts, with the tree-sitter-powershell grammar (wasm).
 * There is no pwsh on the test machines: every script labctl generates must parse here with no
 * ERROR or MISSING node. Test-only (not part of the built package).
 */
export interface SyntaxProblem {
  kind: string;
  line: number;
  column: number;
  text: string;
}

let parserPromise: Promise<Parser> | undefined;

async function powershellParser(): Promise<Parser> {
  parserPromise ??= (async () => {
    const require = createRequire(import.meta.url);
    await Parser.init();
    const parser = new Parser();
    parser.setLanguage(await Language.load(require.resolve('tree-sitter-powershell/tree-sitter-powershell.wasm')));
    return parser;
  })();
  return parserPromise;
}

export async function powershellSyntaxProblems(script: string): Promise<SyntaxProblem[]> {
  const parser = await powershellParser();
  const tree = parser.parse(script);
  if (!tree) throw new Error('tree-sitter returned no tree');
  const problems: SyntaxProblem[] = [];
  const walk = (node: NonNullable<typeof tree>['rootNode']) => {
    if (node.type === 'ERROR' || node.isMissing) {
      problems.push({
        kind: node.isMissing ? `MISSING ${node.type}` : 'ERROR',
        line: node.startPosition.row + 1,
        column: node.startPosition.column + 1,
        text: node.text.slice(0, 60),
      });
    }
    for (const child of node.children)
      if (child && (child.hasError || child.isMissing || child.type === 'ERROR')) walk(child);
  };
  if (tree.rootNode.hasError) walk(tree.rootNode);
  tree.delete();
  return problems;
}
