"""The parameters batch_submit adds or words for a job declare: their YAML blocks in tools/ are generated from these
(`./dev sync-models`). The texts are the tool YAML's, in the four languages the plugin ships."""

from __future__ import annotations

from specs.declare import Option, Param, texts

# ruff: noqa: E501  (one text per line reads best, in four languages)

SYSTEM_PROMPT_JOB = Param(
    'system_prompt', 'string', 'form',
    label=texts('System prompt', '系统提示词', 'システムプロンプト', 'Prompt do sistema'),
    human_description=texts("Shared instructions; a row's own system_prompt wins.", '共享指令；行内 system_prompt 优先。', '共通の指示。行ごとの system_prompt が優先されます。', 'Instruções compartilhadas; o system_prompt da própria linha prevalece.'),
)

MODEL_JOB = Param(
    'model', 'string', 'form',
    default='default',
    label=texts('Model', '模型', 'モデル', 'Modelo'),
    human_description=texts("default (the provider's default model), auto, or a model name; a row's own model wins.", 'default（默认模型）、auto 或模型名；行内 model 优先。', 'default（プロバイダーのデフォルトモデル）、auto、またはモデル名。行ごとの model が優先されます。', 'default (o modelo padrão do provedor), auto ou um nome de modelo; o model da própria linha prevalece.'),
)

CUSTOM_MODEL_JOB = Param(
    'custom_model', 'string', 'form',
    label=texts('Custom model', '自定义模型', 'カスタムモデル', 'Modelo personalizado'),
    human_description=texts('Any other model name (wins over model).', '任意其他模型名（优先于 model）。', 'その他の任意のモデル名（model より優先）。', 'Qualquer outro nome de modelo (prevalece sobre model).'),
)

TEMPERATURE_JOB = Param(
    'temperature', 'number', 'form',
    min=0,
    max=2,
    label=texts('Temperature', '温度', '温度', 'Temperatura'),
    human_description=texts("0 to 2; empty for the model's default.", '0 到 2；留空使用模型默认值。', '0〜2。空の場合はモデルのデフォルト。', '0 a 2; vazio para o padrão do modelo.'),
)

MAX_TOKENS_JOB = Param(
    'max_tokens', 'number', 'form',
    min=1,
    label=texts('Max tokens', '最大 token 数', '最大トークン数', 'Máximo de tokens'),
    human_description=texts("Upper bound on each reply's length.", '每条回复的长度上限。', '各応答の長さの上限。', 'Limite superior do tamanho de cada resposta.'),
)

JSON_OUTPUT_JOB = Param(
    'json_output', 'boolean', 'form',
    default=False,
    label=texts('JSON output', 'JSON 输出', 'JSON 出力', 'Saída JSON'),
    human_description=texts('Ask for a JSON object reply.', '要求回复 JSON 对象。', 'JSON オブジェクトでの応答を要求します。', 'Pede uma resposta em objeto JSON.'),
)

JSON_SCHEMA_JOB = Param(
    'json_schema', 'string', 'form',
    label=texts('JSON schema', 'JSON Schema', 'JSON Schema', 'JSON Schema'),
    human_description=texts('A JSON Schema the replies must follow.', '回复需遵循的 JSON Schema。', '応答が従うべき JSON Schema。', 'Um JSON Schema que as respostas devem seguir.'),
)

MAX_COST_USD_JOB = Param(
    'max_cost_usd', 'number', 'form',
    min=0,
    label=texts('Max cost per item (USD)', '单项费用上限（美元）', '1 項目あたりのコスト上限（USD）', 'Custo máximo por item (USD)'),
    human_description=texts("An item whose worst-case cost is above this is not sent (not_run, budget_exceeded); it tightens the administrator's budgets, never loosens them.", '最坏情况费用超过此值的条目不会发送（not_run，budget_exceeded）；只能收紧管理员设置的预算，不能放宽。', '最悪ケースのコストがこれを超える項目は送信されません（not_run、budget_exceeded）。管理者の予算を厳しくするだけで、緩めることはありません。', 'Um item cujo custo no pior caso passa deste valor não é enviado (not_run, budget_exceeded); restringe os orçamentos do administrador, nunca os afrouxa.'),
)

BUDGETS_JOB = Param(
    'budgets', 'string', 'form',
    label=texts('Budgets (YAML or JSON)', '预算（YAML 或 JSON）', '予算（YAML または JSON）', 'Orçamentos (YAML ou JSON)'),
    human_description=texts("Extra spend limits in USD that can only tighten the administrator's, e.g. {user: {day: 0.5}, app: {month: 20}}; they apply to the submitter's app and user. See README, Spend control.", '额外的美元支出上限，只能收紧管理员的预算，例如 {user: {day: 0.5}, app: {month: 20}}；按提交者的应用和用户计。见 README 的 Spend control。', '管理者の予算を厳しくすることしかできない追加の支出上限（USD）。例: {user: {day: 0.5}, app: {month: 20}}。送信者のアプリとユーザーに適用されます。README の Spend control を参照。', 'Limites de gasto extras em USD que só podem restringir os do administrador, ex.: {user: {day: 0.5}, app: {month: 20}}; valem para o aplicativo e o usuário de quem enviou. Veja o README, Spend control.'),
)

PROMPTS_JOB = Param(
    'prompts', 'string', 'llm',
    label=texts('Prompts', '提示词列表', 'プロンプト一覧', 'Prompts'),
    human_description=texts('A JSON array of strings or of objects {"id", "prompt", optional "system_prompt", "model", "max_tokens"}, or one prompt per line. Leave empty when giving a file.', '字符串或对象数组的 JSON，或每行一个提示词；提供文件时留空。', '文字列またはオブジェクト {"id", "prompt", 任意で "system_prompt", "model", "max_tokens"} の JSON 配列、または 1 行に 1 つのプロンプト。ファイルを指定する場合は空にします。', 'Um array JSON de strings ou de objetos {"id", "prompt", opcionais "system_prompt", "model", "max_tokens"}, ou um prompt por linha. Deixe vazio ao enviar um arquivo.'),
    llm_description='A JSON array of strings or of objects {"id", "prompt", optional "system_prompt", "model", "max_tokens"}, or one prompt per line. Leave empty when giving a file.',
)

CONCURRENCY_JOB = Param(
    'concurrency', 'number', 'form',
    default=10,
    min=1,
    max=100,
    label=texts('Concurrency per process', '每进程并发数', 'プロセスごとの同時実行数', 'Concorrência por processo'),
    human_description=texts('Requests at the gateway at once from each plugin process (1 to 100).', '每个插件进程同时发往网关的请求数（1 到 100）。', '各プラグインプロセスからゲートウェイへ同時に送るリクエスト数（1〜100）。', 'Requisições simultâneas ao gateway a partir de cada processo do plugin (1 a 100).'),
)

RPM_LIMIT_JOB = Param(
    'rpm_limit', 'number', 'form',
    default=0,
    min=0,
    label=texts('Requests per minute limit', '每分钟请求数上限', '1 分あたりのリクエスト数の上限', 'Limite de requisições por minuto'),
    human_description=texts("Your gateway tier's RPM, shared by every process through Redis; 0 = no limit.", '网关 RPM，所有进程通过 Redis 共享；0 表示不限。', 'ゲートウェイのプランの RPM。Redis を通じてすべてのプロセスで共有されます。0 = 無制限。', 'O RPM do seu plano no gateway, compartilhado por todos os processos via Redis; 0 = sem limite.'),
)

TPM_LIMIT_JOB = Param(
    'tpm_limit', 'number', 'form',
    default=0,
    min=0,
    label=texts('Tokens per minute limit', '每分钟 token 上限', '1 分あたりのトークン数の上限', 'Limite de tokens por minuto'),
    human_description=texts("Your gateway tier's TPM, shared by every process; 0 = no limit.", '网关 TPM，所有进程共享；0 表示不限。', 'ゲートウェイのプランの TPM。すべてのプロセスで共有されます。0 = 無制限。', 'O TPM do seu plano no gateway, compartilhado por todos os processos; 0 = sem limite.'),
)

BATCH_BUDGET_USD_JOB = Param(
    'batch_budget_usd', 'number', 'form',
    min=0,
    label=texts('Job budget (USD)', '任务预算（美元）', 'ジョブの予算（USD）', 'Orçamento do job (USD)'),
    human_description=texts('The most the whole job may spend, across every plugin process (counted in Redis). Items whose worst-case cost no longer fits are not run (status not_run, error_code budget_exceeded) and appear in failed_items.', '整个任务的支出上限，跨所有插件进程（在 Redis 中计数）。最坏情况费用超出剩余预算的条目不会运行（not_run，budget_exceeded），并列入 failed_items。', 'ジョブ全体で使える上限額で、すべてのプラグインプロセスの合計です（Redis で集計）。最悪ケースのコストが収まらなくなった項目は実行されず（status not_run、error_code budget_exceeded）、failed_items に入ります。', 'O máximo que o job inteiro pode gastar, somando todos os processos do plugin (contado no Redis). Itens cujo custo no pior caso não cabe mais não são executados (status not_run, error_code budget_exceeded) e aparecem em failed_items.'),
)

FILE = Param(
    'file', 'file', 'llm',
    label=texts('Input file', '输入文件', '入力ファイル', 'Arquivo de entrada'),
    human_description=texts('JSONL (one object per line), CSV or XLSX (first sheet) with a header row: a prompt column, an id column, optional system_prompt, model and max_tokens columns.', 'JSONL（每行一个对象），或带表头行的 CSV、XLSX（第一个工作表）：prompt 列、id 列，可选 system_prompt、model、max_tokens 列。', 'JSONL（1 行に 1 オブジェクト）、またはヘッダー行付きの CSV・XLSX（最初のシート）: prompt 列、id 列、任意で system_prompt・model・max_tokens 列。', 'JSONL (um objeto por linha), CSV ou XLSX (primeira planilha) com linha de cabeçalho: uma coluna de prompt, uma coluna de id e, opcionalmente, colunas system_prompt, model e max_tokens.'),
    llm_description='JSONL (one object per line), CSV or XLSX (first sheet) with a header row: a prompt column, an id column, optional system_prompt, model and max_tokens columns.',
)

PROMPT_COLUMN = Param(
    'prompt_column', 'string', 'form',
    label=texts('Prompt column', '提示词列', 'プロンプト列', 'Coluna do prompt'),
    human_description=texts('CSV or XLSX column holding the prompt (default prompt).', 'CSV 或 XLSX 中提示词所在列（默认 prompt）。', 'プロンプトが入っている CSV・XLSX の列（デフォルト prompt）。', 'Coluna do CSV ou XLSX com o prompt (padrão prompt).'),
)

ID_COLUMN = Param(
    'id_column', 'string', 'form',
    label=texts('ID column', 'ID 列', 'ID 列', 'Coluna do ID'),
    human_description=texts("CSV or XLSX column holding each row's id (default id; the row number when missing).", 'CSV 或 XLSX 中每行 id 所在列（默认 id；缺失时用行号）。', '各行の id が入っている CSV・XLSX の列（デフォルト id。ない場合は行番号）。', 'Coluna do CSV ou XLSX com o id de cada linha (padrão id; o número da linha quando falta).'),
)

MODE = Param(
    'mode', 'select', 'form',
    default='workers',
    label=texts('Mode', '模式', 'モード', 'Modo'),
    human_description=texts("workers: the plugin's processes send the calls. native: the gateway's Batch API (/v1/batches, discounted, up to 24 h). auto: native when the gateway has it and deadline_hours allows.", 'workers：由插件进程发送；native：网关 Batch API（折扣价，最长 24 小时）；auto：网关支持且期限允许时用 native。', 'workers: プラグインのプロセスが呼び出しを送信。native: ゲートウェイの Batch API（/v1/batches、割引あり、最長 24 時間）。auto: ゲートウェイが対応し deadline_hours が許す場合は native。', 'workers: os processos do plugin enviam as chamadas. native: a Batch API do gateway (/v1/batches, com desconto, até 24 h). auto: native quando o gateway a oferece e deadline_hours permite.'),
    options=(
        Option('workers', texts('Plugin workers', '插件工作进程', 'プラグインのワーカー', 'Workers do plugin')),
        Option('native', texts('Gateway Batch API', '网关 Batch API', 'ゲートウェイの Batch API', 'Batch API do gateway')),
        Option('auto', texts('Auto', '自动', '自動', 'Automático')),
    ),
)

DEADLINE_HOURS = Param(
    'deadline_hours', 'number', 'form',
    default=0,
    min=0,
    label=texts('Deadline (hours)', '期限（小时）', '期限（時間）', 'Prazo (horas)'),
    human_description=texts('For mode auto: the Batch API is used only when the job may take 24 h (0 = no deadline).', 'auto 模式：仅当任务可用 24 小时时使用 Batch API（0 表示无期限）。', 'auto モードの場合: ジョブに 24 時間かかってもよいときだけ Batch API を使います（0 = 期限なし）。', 'Para o modo auto: a Batch API só é usada quando o job pode levar 24 h (0 = sem prazo).'),
)

LEASE_SECONDS = Param(
    'lease_seconds', 'number', 'form',
    default=60,
    min=2,
    max=3600,
    label=texts('Lease (seconds)', '租约（秒）', 'リース（秒）', 'Lease (segundos)'),
    human_description=texts('How long a claimed item stays with a process that stopped answering before another takes it (2 to 3600).', '已领取条目在无响应进程上保留多久后由其他进程接手（2 到 3600）。', '応答しなくなったプロセスが取得した項目を、別のプロセスが引き継ぐまでの時間（2〜3600）。', 'Por quanto tempo um item assumido fica com um processo que parou de responder antes que outro o assuma (2 a 3600).'),
)
