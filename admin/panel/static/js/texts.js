// Every text the panel shows, in English and Chinese: one catalogue per language a translator can
// edit, static/i18n/<language>.json ("text": the panel's sentences by key, "values": the values the
// hub stores, by group, as the panel says them). tests/admin/test_panel_catalogues.py fails when a
// key is missing in a language.

const load = async (language) => {
  const response = await fetch(`/admin/static/i18n/${language}.json`);
  if (!response.ok) throw new Error(`the panel's ${language} texts did not load (HTTP ${response.status})`);
  return response.json();
};
const [en, zh] = await Promise.all([load("en"), load("zh")]);

export const TEXT = {en: en.text, zh: zh.text};
export const VALUES = {en: en.values, zh: zh.values};
