"""The parameters chat, stream_chat and batch_chat declare: their YAML blocks in tools/ are generated from these
(`./dev sync-models`). The texts are the tool YAML's, in the four languages the plugin ships."""

from __future__ import annotations

from specs.declare import MODEL_OPTIONS, Option, Param, texts

# ruff: noqa: E501  (one text per line reads best, in four languages)

PROMPT = Param(
    'prompt', 'string', 'llm',
    required=True,
    label=texts('Prompt', '提示词', 'プロンプト', 'Prompt'),
    human_description=texts('The user message sent to the model.', '发送给模型的用户消息。', 'モデルに送信するユーザーメッセージ。', 'A mensagem do usuário enviada ao modelo.'),
    llm_description='The full instruction or question for the model.',
)

SYSTEM_PROMPT = Param(
    'system_prompt', 'string', 'form',
    label=texts('System prompt', '系统提示词', 'システムプロンプト', 'Prompt do sistema'),
    human_description=texts("Optional instructions that set the model's role and rules.", '可选，设定模型角色与规则的指令。', 'モデルの役割とルールを設定する任意の指示。', 'Instruções opcionais que definem o papel e as regras do modelo.'),
)

MODEL = Param(
    'model', 'select', 'form',
    default='default',
    label=texts('Model', '模型', 'モデル', 'Modelo'),
    human_description=texts('"default" uses the provider default model; "auto" sends simple prompts to the cheapest model and complex ones (long, code, multi-step, structured output) to a stronger one.', '"default" 使用授权中的默认模型；"auto" 将简单提示词发给最便宜的模型，复杂提示词（长文本、代码、多步推理、结构化输出）发给更强的模型。', '"default" はプロバイダーのデフォルトモデルを使います。"auto" は簡単なプロンプトを最も安いモデルに、複雑なもの（長文、コード、多段階、構造化出力）をより高性能なモデルに送ります。', '"default" usa o modelo padrão do provedor; "auto" envia prompts simples ao modelo mais barato e os complexos (longos, com código, em várias etapas, com saída estruturada) a um mais forte.'),
    options=MODEL_OPTIONS,
)

CUSTOM_MODEL = Param(
    'custom_model', 'string', 'form',
    label=texts('Other model', '其他模型', 'その他のモデル', 'Outro modelo'),
    human_description=texts("Any model name the gateway serves; overrides the select above. Cost is null unless you add its price in the provider's price overrides.", '网关支持的任意模型名，优先于上面的选择。除非在价格覆盖中添加其价格，否则费用为 null。', 'ゲートウェイが提供する任意のモデル名。上の選択より優先されます。プロバイダーの価格の上書きに価格を追加しない限り、コストは null になります。', 'Qualquer nome de modelo que o gateway atenda; substitui a seleção acima. O custo é null, a menos que você adicione o preço dele na substituição de preços do provedor.'),
)

TEMPERATURE = Param(
    'temperature', 'number', 'form',
    min=0,
    max=2,
    label=texts('Temperature', '温度', '温度', 'Temperatura'),
    human_description=texts('0 to 2. Lower is more deterministic. Empty uses the model default.', '0 到 2，越低越确定。留空使用模型默认值。', '0〜2。低いほど決定的になります。空の場合はモデルのデフォルトを使います。', '0 a 2. Quanto menor, mais determinístico. Vazio usa o padrão do modelo.'),
)

MAX_TOKENS = Param(
    'max_tokens', 'number', 'form',
    min=1,
    label=texts('Max tokens', '最大 token 数', '最大トークン数', 'Máximo de tokens'),
    human_description=texts('Upper bound on the reply length in tokens.', '回复长度上限（token）。', '応答の長さの上限（トークン）。', 'Limite superior do tamanho da resposta, em tokens.'),
)

TOP_P = Param(
    'top_p', 'number', 'form',
    min=0,
    max=1,
    label=texts('Top P', 'Top P', 'Top P', 'Top P'),
    human_description=texts('Nucleus sampling, 0 to 1. Empty uses the model default.', '核采样，0 到 1。留空使用模型默认值。', '核サンプリング（0〜1）。空の場合はモデルのデフォルトを使います。', 'Amostragem nucleus, 0 a 1. Vazio usa o padrão do modelo.'),
)

SEED = Param(
    'seed', 'number', 'form',
    label=texts('Seed', '随机种子', 'シード', 'Semente'),
    human_description=texts('A whole number for more repeatable replies, where the model supports it.', '整数，在模型支持时使回复更可复现。', 'モデルが対応していれば、応答の再現性を高める整数。', 'Um número inteiro para respostas mais reproduzíveis, quando o modelo oferece suporte.'),
)

STOP = Param(
    'stop', 'string', 'form',
    label=texts('Stop sequences', '停止序列', '停止シーケンス', 'Sequências de parada'),
    human_description=texts('Up to 4 sequences, one per line; generation stops before any of them.', '最多 4 个，每行一个；生成在遇到其中任意一个前停止。', '最大 4 つ、1 行に 1 つ。いずれかの直前で生成が止まります。', 'Até 4 sequências, uma por linha; a geração para antes de qualquer uma delas.'),
)

JSON_OUTPUT = Param(
    'json_output', 'boolean', 'form',
    default=False,
    label=texts('JSON output', 'JSON 输出', 'JSON 出力', 'Saída JSON'),
    human_description=texts('Ask for a JSON object (JSON mode). With a JSON schema below, the reply follows that schema.', '要求返回 JSON 对象（JSON 模式）。若下方填写了 JSON Schema，则按该结构返回。', 'JSON オブジェクトを要求します（JSON モード）。下で JSON Schema を指定すると、応答はそのスキーマに従います。', 'Pede um objeto JSON (modo JSON). Com um JSON Schema abaixo, a resposta segue esse schema.'),
)

JSON_SCHEMA = Param(
    'json_schema', 'string', 'form',
    label=texts('JSON schema', 'JSON Schema', 'JSON Schema', 'JSON Schema'),
    human_description=texts('Optional JSON Schema of an object, e.g. {"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}', '可选，对象的 JSON Schema，例如 {"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}', '任意。オブジェクトの JSON Schema。例: {"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}', 'JSON Schema opcional de um objeto, ex.: {"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}'),
)

CACHE = Param(
    'cache', 'select', 'form',
    default='auto',
    label=texts('Reply cache', '回复缓存', '応答キャッシュ', 'Cache de respostas'),
    human_description=texts('auto: identical requests at temperature 0 are answered from the cache (not stream_chat); on: every identical request (stream_chat too); off: never. A cached reply costs 0.', 'auto：温度为 0 的相同请求从缓存返回（stream_chat 除外）；on：所有相同请求（含 stream_chat）；off：从不。缓存回复费用为 0。', 'auto: 温度 0 の同一リクエストにキャッシュから応答（stream_chat を除く）。on: すべての同一リクエスト（stream_chat も含む）。off: 使わない。キャッシュされた応答のコストは 0 です。', 'auto: requisições idênticas com temperatura 0 são respondidas pelo cache (exceto stream_chat); on: toda requisição idêntica (stream_chat também); off: nunca. Uma resposta em cache custa 0.'),
    options=(
        Option('auto', texts('Auto (temperature 0)', '自动（温度 0）', '自動（温度 0）', 'Automático (temperatura 0)')),
        Option('on', texts('On', '开启', 'オン', 'Ativado')),
        Option('off', texts('Off', '关闭', 'オフ', 'Desativado')),
    ),
)

MAX_COST_USD = Param(
    'max_cost_usd', 'number', 'form',
    min=0,
    label=texts('Max cost per call (USD)', '单次调用费用上限（美元）', '1 回の呼び出しのコスト上限（USD）', 'Custo máximo por chamada (USD)'),
    human_description=texts("A call (in batch_chat, an item) whose worst-case cost is above this is not sent; it tightens the administrator's budgets, never loosens them.", '最坏情况费用超过此值的调用（batch_chat 中为单项）不会发送；只能收紧管理员设置的预算，不能放宽。', '最悪ケースのコストがこれを超える呼び出し（batch_chat では各項目）は送信されません。管理者の予算を厳しくするだけで、緩めることはありません。', 'Uma chamada (no batch_chat, um item) cujo custo no pior caso passa deste valor não é enviada; restringe os orçamentos do administrador, nunca os afrouxa.'),
)

BUDGETS = Param(
    'budgets', 'string', 'form',
    label=texts('Budgets (YAML or JSON)', '预算（YAML 或 JSON）', '予算（YAML または JSON）', 'Orçamentos (YAML ou JSON)'),
    human_description=texts("Extra spend limits in USD that can only tighten the administrator's, e.g. {user: {day: 0.5}, app: {month: 20}}. See README, Spend control.", '额外的美元支出上限，只能收紧管理员的预算，例如 {user: {day: 0.5}, app: {month: 20}}。见 README 的 Spend control。', '管理者の予算を厳しくすることしかできない追加の支出上限（USD）。例: {user: {day: 0.5}, app: {month: 20}}。README の Spend control を参照。', 'Limites de gasto extras em USD que só podem restringir os do administrador, ex.: {user: {day: 0.5}, app: {month: 20}}. Veja o README, Spend control.'),
)

STREAM_REASONING = Param(
    'stream_reasoning', 'boolean', 'form',
    default=False,
    label=texts('Stream reasoning', '流式输出推理过程', '推論過程をストリーミング', 'Transmitir o raciocínio'),
    human_description=texts("Stream the model's reasoning live as the `reasoning` variable. It never enters the answer (`text`) either way.", '将模型的推理过程作为 `reasoning` 变量实时流式输出；推理内容始终不会进入回答（`text`）。', 'モデルの推論過程を `reasoning` 変数としてリアルタイムにストリーミングします。どちらの場合も回答（`text`）に入ることはありません。', 'Transmite o raciocínio do modelo ao vivo como a variável `reasoning`. Ele nunca entra na resposta (`text`), em nenhum dos casos.'),
)

PROMPTS = Param(
    'prompts', 'string', 'llm',
    required=True,
    label=texts('Prompts', '提示词列表', 'プロンプト一覧', 'Prompts'),
    human_description=texts('A JSON array of strings or of objects {"id", "prompt", optional "system_prompt", "model", "max_tokens"}, or plain text with one prompt per line. Up to 1000 items.', '字符串数组或对象数组（{"id", "prompt", 可选 "system_prompt", "model", "max_tokens"}）的 JSON，或每行一个提示词的纯文本。最多 1000 条。', '文字列またはオブジェクト {"id", "prompt", 任意で "system_prompt", "model", "max_tokens"} の JSON 配列、または 1 行に 1 つのプロンプトを書いたプレーンテキスト。最大 1000 件。', 'Um array JSON de strings ou de objetos {"id", "prompt", opcionais "system_prompt", "model", "max_tokens"}, ou texto simples com um prompt por linha. Até 1000 itens.'),
    llm_description='A JSON array of prompt strings, or one prompt per line.',
)

CONCURRENCY = Param(
    'concurrency', 'number', 'form',
    default=10,
    min=1,
    max=100,
    label=texts('Concurrency', '并发数', '同時実行数', 'Concorrência'),
    human_description=texts('How many prompts are in flight at once (1 to 100).', '同时处理的提示词数量（1 到 100）。', '同時に処理するプロンプトの数（1〜100）。', 'Quantos prompts ficam em andamento ao mesmo tempo (1 a 100).'),
)

RPM_LIMIT = Param(
    'rpm_limit', 'number', 'form',
    default=0,
    min=0,
    label=texts('Requests per minute limit', '每分钟请求数上限', '1 分あたりのリクエスト数の上限', 'Limite de requisições por minuto'),
    human_description=texts("Your gateway tier's RPM; 0 = no limit. Shared by every invocation using the same key.", '网关套餐的 RPM；0 表示不限。使用同一密钥的所有调用共享该限制。', 'ゲートウェイのプランの RPM。0 = 無制限。同じキーを使うすべての呼び出しで共有されます。', 'O RPM do seu plano no gateway; 0 = sem limite. Compartilhado por todas as invocações que usam a mesma chave.'),
)

TPM_LIMIT = Param(
    'tpm_limit', 'number', 'form',
    default=0,
    min=0,
    label=texts('Tokens per minute limit', '每分钟 token 上限', '1 分あたりのトークン数の上限', 'Limite de tokens por minuto'),
    human_description=texts("Your gateway tier's TPM; 0 = no limit. Each prompt reserves its estimated tokens plus max_tokens before it is sent.", '网关套餐的 TPM；0 表示不限。每条提示词发送前预留估算 token 数加 max_tokens。', 'ゲートウェイのプランの TPM。0 = 無制限。各プロンプトは送信前に推定トークン数と max_tokens を予約します。', 'O TPM do seu plano no gateway; 0 = sem limite. Cada prompt reserva seus tokens estimados mais max_tokens antes de ser enviado.'),
)

BATCH_BUDGET_USD = Param(
    'batch_budget_usd', 'number', 'form',
    min=0,
    label=texts('Batch budget (USD)', '批量预算（美元）', 'バッチの予算（USD）', 'Orçamento do lote (USD)'),
    human_description=texts('The most this batch may spend. Items whose worst-case cost no longer fits are not run (status not_run, error_code budget_exceeded) and appear in failed_items.', '本批次的支出上限。最坏情况费用超出剩余预算的条目不会运行（not_run，budget_exceeded），并列入 failed_items。', 'このバッチで使える上限額。最悪ケースのコストが収まらなくなった項目は実行されず（status not_run、error_code budget_exceeded）、failed_items に入ります。', 'O máximo que este lote pode gastar. Itens cujo custo no pior caso não cabe mais não são executados (status not_run, error_code budget_exceeded) e aparecem em failed_items.'),
)
