"""Providers from other packages (the ``tutopanda.*`` entry points), client specs, and which
producer serves a descriptor (environment first, then model, then registration order).

A "distribution" here is a ``*.dist-info`` folder and a module written to a temporary folder
on ``sys.path``: ``importlib.metadata`` finds its entry points exactly as it finds an installed
package's (tests/integration/test_plugin_package.py installs a real one).
"""

from __future__ import annotations

import json
import logging
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from producers import plugins
from producers.clients import client_spec, client_specs, default_client_registry
from producers.clients.spec import OPENAI_SPEC, REPLICATE_SPEC, ClientSpec
from producers.registry import ProviderRegistry, default_registry
from producers.sdk import Artefact, Descriptor, Kind, ProducerRuntime, define_producer
from producers.sdk.errors import DeclarationError, UnknownModelError
from producers.sdk.runtime import ClientContext
from producers.sdk.secrets import StaticSecretResolver
from producers.sdk.telemetry import ProducerLogger

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"

PRODUCER_MODULE = """\
from producers.sdk import Kind, define_producer

async def invoke(rt):
    return [await rt.artefacts.text("text[0]", "hi")]

def _make(name, models, environments=("*",)):
    return define_producer(name=name, provider="{provider}", models=models, kind=Kind.TEXT,
                           invoke=invoke, environments=environments)

PRODUCERS = [_make("{provider}.any", ["*"]), _make("{provider}.airflow", ["*"], ["airflow"])]
ONE = _make("{provider}.one", ["m-1"])
def FACTORY():
    return [ONE]
def BROKEN_FACTORY():
    raise RuntimeError("no config here")
NOT_A_PRODUCER = "a string"
MIXED = [ONE, 42]
"""


@pytest.fixture
def fresh_plugins() -> Iterator[None]:
    """Entry points are read once per process: read them again around each test."""
    plugins.load.cache_clear()
    default_registry.cache_clear()
    yield
    plugins.load.cache_clear()
    default_registry.cache_clear()


@pytest.fixture
def distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_plugins: None
) -> Callable[..., Path]:
    """Put a distribution with entry points (and a module) on ``sys.path``."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(
        name: str, entry_points: dict[str, dict[str, str]], module: str = "", source: str = ""
    ) -> Path:
        if module:  # a module of this name from another test must not be reused
            monkeypatch.delitem(sys.modules, module, raising=False)
        dist = tmp_path / f"{name.replace('-', '_')}-1.0.dist-info"  # as installers name it
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        lines = []
        for group, points in entry_points.items():
            lines.append(f"[{group}]")
            lines += [f"{key} = {value}" for key, value in points.items()]
        (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
        if module:
            (tmp_path / f"{module}.py").write_text(source)
        return tmp_path

    return make


def _text_producer(name: str, models: Sequence[str], environments: Sequence[str] = ("*",)):
    async def invoke(rt: ProducerRuntime) -> Sequence[Artefact]:
        return []

    return define_producer(
        name=name,
        provider="echo",
        models=models,
        kind=Kind.TEXT,
        invoke=invoke,
        environments=environments,
    )


# -- the environment rule ----------------------------------------------------------------------

RANKED = [
    _text_producer("any-wild", ["*"]),
    _text_producer("any-exact", ["echo-1"]),
    _text_producer("airflow-wild", ["*"], ["airflow"]),
    _text_producer("local-exact", ["echo-2"], ["local"]),
    _text_producer("any-wild-later", ["*"]),
    _text_producer("air-pattern-exact", ["echo-3"], ["air*"]),
]


@pytest.mark.parametrize(
    ("model", "environment", "expected"),
    [
        ("echo-1", "local", "any-exact"),  # exact model beats wildcard, same environment rank
        ("echo-1", "airflow", "airflow-wild"),  # the named environment beats the exact model
        ("echo-9", "airflow", "airflow-wild"),
        ("echo-9", "local", "any-wild-later"),  # among equals, the later registration wins
        ("echo-2", "local", "local-exact"),
        ("echo-2", "airflow", "airflow-wild"),
        ("echo-3", "airflow", "airflow-wild"),  # a pattern ("air*") is not naming it
        ("echo-3", "aircraft", "air-pattern-exact"),
    ],
    ids=[
        "exact-model",
        "environment-over-exact-model",
        "environment",
        "later-registration",
        "local-producer-locally",
        "airflow-producer-in-airflow",
        "pattern-environment-is-not-named",
        "pattern-environment-exact-model",
    ],
)
def test_environment_first_then_model_then_registration_order(
    model: str, environment: str, expected: str
) -> None:
    registry = ProviderRegistry(RANKED)
    assert registry.find(Descriptor.parse(f"echo:{model}", environment=environment)).name == (
        expected
    )


@pytest.mark.parametrize(
    ("models", "environments", "environment", "score"),
    [
        (["m"], ["airflow"], "airflow", 4),
        (["*"], ["airflow"], "airflow", 3),
        (["m"], ["*"], "airflow", 2),
        (["*"], ["*"], "airflow", 1),
        (["m"], ["airflow"], "local", 0),
        (["n"], ["*"], "local", 0),
    ],
    ids=["both-named", "named-environment", "named-model", "both-patterns", "other-env", "other"],
)
def test_match_scores(
    models: list[str], environments: list[str], environment: str, score: int
) -> None:
    definition = _text_producer("p", models, environments)
    assert definition.matches("echo", "m", environment) == score
    assert definition.matches("other", "m", environment) == 0


# -- tutopanda.producers -----------------------------------------------------------------------


def test_a_packages_producers_join_the_default_registry(distribution: Callable[..., Path]) -> None:
    distribution(
        "acme-producers",
        {
            "tutopanda.producers": {
                "list": "tp_acme_p:PRODUCERS",
                "factory": "tp_acme_p:FACTORY",
            }
        },
        "tp_acme_p",
        PRODUCER_MODULE.replace("{provider}", "acmep"),
    )
    registry = default_registry()
    assert {"openai", "replicate", "acmep"} <= set(registry.providers)
    local = registry.find(Descriptor.parse("acmep:x"))
    assert local.name == "acmep.any"
    assert registry.find(Descriptor.parse("acmep:x", environment="airflow")).name == (
        "acmep.airflow"
    )
    assert registry.find(Descriptor.parse("acmep:m-1")).name == "acmep.one"
    # the built-ins are all still there
    assert registry.find(Descriptor.parse("replicate:bytedance/seedream-4")).name == (
        "replicate.media"
    )
    assert plugins.failures() == ()


BROKEN = [
    ("tp_missing_module:X", "ModuleNotFoundError: No module named 'tp_missing_module'"),
    ("tp_acme_b:NOT_A_PRODUCER", "it names str, not a ProducerDefinition"),
    ("tp_acme_b:MIXED", "it names int among its items"),
    ("tp_acme_b:BROKEN_FACTORY", "calling it raised RuntimeError: no config here"),
    ("tp_acme_b:NOPE", "AttributeError"),
]


@pytest.mark.parametrize(
    ("value", "reason"),
    BROKEN,
    ids=["no-module", "wrong-type", "wrong-item", "factory-raises", "no-attribute"],
)
def test_a_broken_producer_plugin_is_one_line_and_never_breaks_the_built_ins(
    distribution: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
    value: str,
    reason: str,
) -> None:
    distribution(
        "acme-broken",
        {"tutopanda.producers": {"bad": value}},
        "tp_acme_b",
        PRODUCER_MODULE.replace("{provider}", "acmeb"),
    )
    with caplog.at_level(logging.WARNING, logger="producers.plugins"):
        registry = default_registry()
        default_registry.cache_clear()
        default_registry()  # read once per process: no second warning
    (line,) = [r.getMessage() for r in caplog.records if r.name == "producers.plugins"]
    assert "\n" not in line
    assert f"tutopanda.producers entry point 'bad' ({value}) of acme-broken 1.0" in line
    assert reason in line and "skipped" in line
    assert registry.find(Descriptor.parse("openai:gpt-5-mini")).name == "openai.prompt"
    with pytest.raises(UnknownModelError) as caught:
        registry.find(Descriptor.parse("acmeb:m-1"))
    message = str(caught.value)
    assert "no producer for provider 'acmeb'" in message
    assert "entry point 'bad'" in message and "acme-broken 1.0" in message and reason in message


# -- tutopanda.clients -------------------------------------------------------------------------

CLIENT_MODULE = """\
from producers.clients.spec import ClientSpec

class Stub:
    def __init__(self, key, **options):
        self.key, self.options = key, options

def live(context):
    return Stub(SPEC.api_key(context), **SPEC.options(context))

SPEC = ClientSpec(provider="acmec", live_factory=live, secret_name="ACMEC_KEY",
                  base_url_env="ACMEC_BASE_URL", default_base_url="https://api.acmec.example/v1")
OTHER = ClientSpec(provider="acmec", live_factory=live, secret_name="OTHER_KEY")
"""


def _context(provider: str, options: dict[str, object] | None = None) -> ClientContext:
    return ClientContext(
        provider=provider,
        mode="live",
        secrets=StaticSecretResolver({"ACMEC_KEY": "acmec-key-123456"}),
        logger=ProducerLogger(),
        options=options or {},
    )


def test_a_packages_client_spec_gives_its_provider_a_live_adapter(
    distribution: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    distribution(
        "acme-clients",
        {"tutopanda.clients": {"acmec": "tp_acme_c:SPEC"}},
        "tp_acme_c",
        CLIENT_MODULE,
    )
    monkeypatch.delenv("ACMEC_BASE_URL", raising=False)
    assert client_spec("AcmeC") is not None
    assert set(client_specs()) == {"openai", "replicate", "acmec"}
    registry = default_client_registry()
    assert registry.has("acmec", "live") and registry.has("acmec", "mock")
    client = registry.build(_context("acmec"))
    assert (client.key, client.options) == (
        "acmec-key-123456",
        {"base_url": "https://api.acmec.example/v1"},
    )
    monkeypatch.setenv("ACMEC_BASE_URL", "http://127.0.0.1:9/v1/")
    assert registry.build(_context("acmec")).options == {"base_url": "http://127.0.0.1:9/v1"}
    given = registry.build(_context("acmec", {"base_url": "https://gw.example", "timeout": 3}))
    assert given.options == {"base_url": "https://gw.example", "timeout": 3}
    assert not registry.has("nobody", "live")


def test_two_packages_for_one_provider_keep_the_first(
    distribution: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    distribution(
        "acme-a", {"tutopanda.clients": {"acmec": "tp_acme_c:SPEC"}}, "tp_acme_c", CLIENT_MODULE
    )
    distribution("acme-b", {"tutopanda.clients": {"acmec": "tp_acme_c:OTHER"}})
    with caplog.at_level(logging.WARNING):
        spec = client_spec("acmec")
    assert spec is not None and spec.secret_name == "ACMEC_KEY"
    assert "acme-a 1.0 is used" in caplog.text and "acme-b 1.0 is skipped" in caplog.text


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"provider": "Acme"}, "lower-case"),
        ({"provider": "ac me"}, "lower-case"),
        ({"secret_name": "acme-key"}, "environment variable"),
        ({"base_url_env": "ACME URL"}, "environment variable"),
        ({"default_base_url": "api.acme.example"}, r"not an http\(s\) URL"),
        ({"live_factory": "acme:live"}, "callable"),
    ],
    ids=["upper-case", "space", "secret-name", "base-url-env", "relative-url", "not-callable"],
)
def test_a_client_spec_is_checked_when_defined(fields: dict[str, object], problem: str) -> None:
    arguments: dict[str, object] = {
        "provider": "acme",
        "live_factory": lambda context: None,
        "secret_name": "ACME_KEY",
        **fields,
    }
    with pytest.raises(ValueError, match=problem):
        ClientSpec(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", ["a b", "acme:x", "-acme", "ac.me", ""], ids=repr)
def test_a_producer_for_what_is_not_a_provider_name_is_refused(provider: str) -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        _text_producer_for(provider)


def _text_producer_for(provider: str) -> object:
    async def invoke(rt: ProducerRuntime) -> Sequence[Artefact]:
        return []

    return define_producer(name="x", provider=provider, models=["*"], kind=Kind.TEXT, invoke=invoke)


def test_the_built_in_specs_are_the_one_place_for_their_names() -> None:
    from producers.clients import replicate

    assert (OPENAI_SPEC.secret_name, OPENAI_SPEC.base_url_env) == (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
    )
    assert (REPLICATE_SPEC.secret_name, REPLICATE_SPEC.base_url_env) == (
        "REPLICATE_API_TOKEN",
        "REPLICATE_BASE_URL",
    )
    assert REPLICATE_SPEC.default_base_url == replicate.DEFAULT_BASE_URL


# -- tutopanda.models ---------------------------------------------------------------------------


def _declaration(folder: Path, model: str, description: str) -> None:
    data = json.loads((EXAMPLES / "models" / "acme" / "tiny-image.json").read_text())
    data.update(model=model, description=description)
    path = folder / f"{model.replace('/', '__')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_a_packages_model_folder_joins_the_catalogue_under_the_deployments(
    distribution: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from producers.replicate.catalogue import BUILTIN_DIR, search_path

    package_models = tmp_path / "package-models"
    _declaration(package_models, "acme/one", "from the package")
    _declaration(package_models, "acme/two", "from the package")
    deployment = tmp_path / "deployment-models"
    _declaration(deployment, "acme/two", "from the deployment")
    source = f"from pathlib import Path\nMODELS = Path({str(package_models)!r})\n"
    distribution(
        "acme-models", {"tutopanda.models": {"acme": "tp_acme_m:MODELS"}}, "tp_acme_m", source
    )
    monkeypatch.setenv("TUTOPANDA_MODELS_PATH", str(deployment))
    assert search_path() == [BUILTIN_DIR, package_models, deployment]
    infos = {i.model_id: i for i in default_registry().models()}
    assert infos["replicate:acme/one"].description == "from the package"
    assert infos["replicate:acme/two"].description == "from the deployment"
    assert "replicate:bytedance/seedream-4" in infos


def test_a_packages_bad_model_file_is_skipped_but_the_deployments_is_an_error(
    distribution: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from producers.replicate.catalogue import Catalogue

    package_models = tmp_path / "package-models"
    _declaration(package_models, "acme/fine", "fine")
    (package_models / "broken.json").write_text("{not json")
    source = f"MODELS = [{str(package_models)!r}]\n"
    distribution(
        "acme-models", {"tutopanda.models": {"acme": "tp_acme_m2:MODELS"}}, "tp_acme_m2", source
    )
    monkeypatch.delenv("TUTOPANDA_MODELS_PATH", raising=False)
    with caplog.at_level(logging.WARNING):
        catalogue = Catalogue.load()
    assert catalogue.get("acme/fine") is not None and catalogue.get("bytedance/seedream-4")
    assert "broken.json" in caplog.text and "acme-models 1.0" in caplog.text
    deployment = tmp_path / "deployment-models"
    deployment.mkdir()
    (deployment / "broken.json").write_text("{not json")
    monkeypatch.setenv("TUTOPANDA_MODELS_PATH", str(deployment))
    with pytest.raises(DeclarationError, match=r"broken\.json"):
        Catalogue.load()


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("MODELS = 'relative/models'\n", "is not an absolute path"),
        ("MODELS = '/no/such/tutopanda/folder'\n", "does not exist"),
        ("MODELS = 3\n", "it names int, not a folder path"),
    ],
    ids=["relative", "missing", "wrong-type"],
)
def test_a_bad_model_folder_entry_point_is_skipped(
    distribution: Callable[..., Path], source: str, reason: str
) -> None:
    from producers.replicate.catalogue import BUILTIN_DIR, search_path

    distribution(
        "acme-folders", {"tutopanda.models": {"f": "tp_acme_f:MODELS"}}, "tp_acme_f", source
    )
    assert search_path()[0] == BUILTIN_DIR and len(search_path()) == 1 + len(
        [p for p in search_path()[1:] if p.exists()]
    )
    (failure,) = plugins.failures(plugins.MODELS_GROUP)
    assert reason in str(failure) and "acme-folders 1.0" in str(failure)


def test_items_of_accepts_one_many_or_a_factory() -> None:
    assert plugins.items_of(3, int, "an int") == (3,)
    assert plugins.items_of([1, 2], int, "an int") == (1, 2)
    assert plugins.items_of(lambda: (4,), int, "an int") == (4,)
    with pytest.raises(plugins.PluginError, match="it names str, not an int"):
        plugins.items_of("5", int, "an int")


def test_the_groups_are_the_documented_ones() -> None:
    assert plugins.GROUPS == ("tutopanda.producers", "tutopanda.clients", "tutopanda.models")
    with pytest.raises(ValueError, match="unknown tutopanda entry point group"):
        plugins.load("tutopanda.nope")
    assert textwrap.dedent(plugins.__doc__ or "").count("tutopanda.") >= 3
