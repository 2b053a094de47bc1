/**
 * Test helper: a strict little XML parser (elements, attributes, text, the five entities, the XML
 * declaration), enough to check the JUnit reports snpsim writes are well-formed and structured.
 */
export interface XmlElement {
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: XmlElement[];
  text: string;
}

const ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(text: string): string {
  return text.replace(/&([a-z]+);/g, (m, name: string) => {
    const v = ENTITIES[name];
    if (v === undefined) throw new Error(`unknown entity ${m}`);
    return v;
  });
}

/** Parses `xml`; throws on anything malformed (unbalanced tags, bad attributes, stray text). */
export function parseXml(xml: string): XmlElement {
  let i = 0;
  const decl = /^<\?xml [^?]*\?>\s*/.exec(xml);
  if (decl) i = decl[0].length;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const tagRe = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.:-]*="[^"<]*")*)\s*(\/?)>/y;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt < 0 ? xml.length : lt);
    if (text.length > 0) {
      if (stack.length === 0) {
        if (text.trim() !== '')
          throw new Error(`text outside the root element: ${JSON.stringify(text.slice(0, 40))}`);
      } else {
        stack[stack.length - 1]!.text += decode(text);
      }
    }
    if (lt < 0) break;
    tagRe.lastIndex = lt;
    const m = tagRe.exec(xml);
    if (!m) throw new Error(`malformed tag at ${lt}: ${JSON.stringify(xml.slice(lt, lt + 40))}`);
    const [whole, close, name = '', attrText = '', selfClose] = m;
    i = lt + whole.length;
    if (close) {
      const open = stack.pop();
      if (open?.name !== name) throw new Error(`</${name}> closes <${open?.name ?? 'nothing'}>`);
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of attrText.matchAll(/([A-Za-z_][\w.:-]*)="([^"<]*)"/g)) {
      if (a[1]! in attrs) throw new Error(`duplicate attribute ${a[1]}`);
      attrs[a[1]!] = decode(a[2]!);
    }
    const el: XmlElement = { name, attrs, children: [], text: '' };
    if (stack.length === 0) {
      if (root !== undefined) throw new Error('two root elements');
      root = el;
    } else stack[stack.length - 1]!.children.push(el);
    if (!selfClose) stack.push(el);
  }
  if (stack.length > 0) throw new Error(`<${stack[stack.length - 1]!.name}> is not closed`);
  if (root === undefined) throw new Error('no root element');
  return root;
}
