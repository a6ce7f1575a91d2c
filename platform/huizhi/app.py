"""The portal's Streamlit entry script (``huizhi run`` / ``huizhi demo`` start it).

Order of a run: build (or reuse) the host → require sign-in → map claims to an identity → deny an
identity with no role → compose ``st.navigation`` from the pages this identity may open, one
section per department, plus hidden pages that refuse (in Chinese, audited) every other page path
and a typed unknown one → run the chosen page inside an error boundary that names its plugin.
"""

from __future__ import annotations

import logging
import traceback
from urllib.parse import unquote, urlsplit

import streamlit as st
from sqlalchemy.exc import DBAPIError, OperationalError

# Streamlit's own control flow (st.rerun, st.stop, st.switch_page): the only exceptions a page may
# let out of the boundary. They derive from BaseException, so `except Exception` never sees them;
# named here so the boundary says what passes.
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from huizhi.access import AccessDenied, Identity, identity_from_claims
from huizhi.db import StoreUnavailable
from huizhi.health import process_host
from huizhi.host import Host
from huizhi.logs import log_context
from huizhi.plugins import PluginError
from huizhi.signin import configured_providers, provider_reachable
from huizhi.specs import PageSpec

log = logging.getLogger("huizhi.app")


def _host() -> Host:
    """The process's host (:mod:`huizhi.health`): built at server start by ``huizhi run``, or
    here by the first session when the script is run directly; a failed build is retried."""
    holder = process_host()
    if holder.host is not None:
        return holder.host
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with st.spinner("正在启动平台…"):
        return holder.get()


# Streamlit 1.67 has no locale setting: a few of its widgets carry fixed English text. The shell
# replaces those words with Chinese in CSS: the English text node is hidden (visibility: hidden
# also takes it out of innerText, so screen text and the browser test see only the Chinese) and
# the Chinese is drawn by ::after. Selectors are the widgets' data-testid / react-aria attributes,
# which tests/browser/test_zh_cn.py checks against the running frontend.
_SWAP = "font-size: 0 !important; visibility: hidden;"
_SHOW = "visibility: visible; font-size: {size};"
LOCALE_RULES: dict[str, tuple[str, str]] = {
    # file uploader: the button, the size/type line and the drag overlay
    '[data-testid="stFileUploaderDropzone"] button [data-testid="stMarkdownContainer"] p': ("选择文件", "0.875rem"),
    '[data-testid="stFileUploaderDropzoneInstructions"] span': ("单个文件不超过 {max_mb}MB", "0.875rem"),
    '[data-testid="stFileUploaderDropzone"] > div:not([data-testid]) > span': ("将文件拖放到此处", "0.875rem"),
    # multiselect dropdown: the bulk actions and the empty state (selectbox too)
    '[data-key="__select_all__"] [data-item-hl]': ("全选", "1rem"),
    '[data-key="__select_matches__"] [data-item-hl]': ("选择全部匹配项", "1rem"),
    '[role="listbox"][data-empty] [role="option"] > span': ("无匹配选项", "1rem"),
    # a text box being typed in ("Press Enter to apply"; the search boxes, the typed dates)
    '[data-testid="InputInstructions"] > span:first-child': ("按回车键确认", "12px"),
}


def locale_css(max_upload_mb: int | None = None) -> str:
    """The CSS that puts Chinese in place of Streamlit's fixed English widget text."""
    if max_upload_mb is None:
        max_upload_mb = int(st.get_option("server.maxUploadSize") or 200)
    rules = []
    for selector, (text, size) in LOCALE_RULES.items():
        rules.append(f"{selector} {{ {_SWAP} }}")
        content = text.format(max_mb=max_upload_mb)
        rules.append(f'{selector}::after {{ content: "{content}"; {_SHOW.format(size=size)} }}')
    return "\n".join(rules)


def _auth_secrets() -> dict:
    try:
        return dict(st.secrets.get("auth", {}))
    except Exception:  # no secrets file at all
        return {}


def signin_page(host: Host) -> None:
    _, mid, _ = st.columns([1, 2, 1])
    with mid, st.container(border=True):
        st.title("慧治 · 大兴区智慧城市平台")
        st.write("区级台账、部门应用与领导驾驶舱的统一入口。请使用统一身份认证账号登录。")
        providers = configured_providers(_auth_secrets(), host.settings.signin_labels)
        if not providers:
            st.error("平台尚未配置统一身份认证，暂时无法登录。请联系平台管理员。")
            log.error("no [auth] provider configured in Streamlit secrets")
            return
        for provider in providers:
            if st.button(
                f"使用{provider.label}登录", type="primary", key=f"login-{provider.name or 'default'}", width="stretch"
            ):
                if provider_reachable(provider):
                    st.login(provider.name) if provider.name else st.login()
                else:
                    st.error(
                        f"统一身份认证服务（{provider.label}）暂时无法连接，请稍后再试。"
                        "如持续出现，请联系平台管理员检查认证服务。"
                    )


def _contact(host: Host) -> str:
    return str(host.settings.access.get("contact") or "平台管理员")


def no_access_page(host: Host, identity: Identity) -> None:
    contact = _contact(host)
    _, mid, _ = st.columns([1, 2, 1])
    with mid, st.container(border=True):
        st.title("暂无访问权限")
        if not host.settings.access.get("rules"):
            # Deny by default: a deployment without [access] rules has given nobody a role yet.
            st.write(
                f"您好，{identity.name}。您的账号已通过统一身份认证，但本平台尚未配置角色映射"
                f"（哪些账号、用户组对应哪些角色和部门），因此目前任何人都无法查看页面。"
                f"请联系 **{contact}** 完成角色配置后再登录，并告知下方账号标识。"
            )
        else:
            st.write(
                f"您好，{identity.name}。您的账号已通过统一身份认证，但尚未分配本平台的任何角色，"
                f"因此无法查看任何页面。请联系 **{contact}** 开通权限，并告知下方账号标识。"
            )
        # who is signed in, as the person and an admin know them (never the internal subject key)
        st.markdown(f"**姓名**：{identity.name}" + (f"　**电子邮箱**：{identity.email}" if identity.email else ""))
        st.caption("账号标识（登录名与认证服务）")
        st.code(identity.account, language=None)
        if st.button("退出登录", key="logout-noaccess"):
            _sign_out(host, identity)


def _sign_out(host: Host, identity: Identity) -> None:
    host.audit.record(identity, "signout")
    st.session_state.pop("huizhi_signin_recorded", None)
    st.logout()


def _record_signin(host: Host, identity: Identity) -> None:
    """One audit event per sign-in (not per page load): keyed by the ID token's issue time."""
    token_id = f"{identity.subject}@{identity.claims.get('iat', '')}"
    if st.session_state.get("huizhi_signin_recorded") == token_id:
        return
    st.session_state["huizhi_signin_recorded"] = token_id
    if not host.audit.search(actor=identity.subject, text=token_id, limit=1):  # signin or signin.no_role
        host.audit.record(
            identity,
            "signin" if identity.has_access else "signin.no_role",
            token=token_id,
            grants=identity.grant_labels,
        )


def _session_id() -> str | None:
    run_ctx = get_script_run_ctx()
    return run_ctx.session_id if run_ctx is not None else None


def _page_runner(host: Host, identity: Identity, spec: PageSpec, plugin: str, nav: dict[str, st.Page]):
    def run() -> None:
        # every line logged while the page runs (the plugin's own included) names who and what
        with log_context(session=_session_id(), user=identity.subject, plugin=plugin, page=spec.url_path):
            _run()

    def _run() -> None:
        # Checked again here, not only when building the menu: a page must never trust that it
        # was reached through the menu.
        if not identity.allows(spec.permission, spec.department):
            host.audit.record(identity, "access.denied", f"page:{spec.url_path}", "denied", how="page run")
            st.error("您没有访问此页面的权限。")
            return
        viewed = st.session_state.setdefault("huizhi_viewed", set())
        if spec.url_path not in viewed:
            viewed.add(spec.url_path)
            host.audit.record(identity, "page.view", f"page:{spec.url_path}", plugin=plugin)
        ctx = host.page_context(identity, spec.url_path, params=st.query_params.to_dict(), nav=nav)
        try:
            spec.render(ctx)
        except ScriptControlException:
            raise  # st.rerun / st.stop / st.switch_page: Streamlit's control flow, not an error
        except AccessDenied as exc:
            if not exc.audited:  # raised by the page itself: recorded here, once
                host.audit.record(identity, "access.denied", exc.target, "denied", plugin=plugin,
                                  how="raised by page", page=spec.url_path)
            st.warning(exc.user_message)
        except StoreUnavailable as exc:
            log.error("%s", exc)
            st.error(exc.user_message)
        except OperationalError as exc:  # the database went away mid-session: not the plugin's fault
            down = StoreUnavailable(host.settings.database_url, exc)
            log.error("page %s: %s", spec.url_path, down)
            st.error(down.user_message)
        except Exception as exc:
            # Everything else is the plugin's, Streamlit's own API errors included (a duplicate
            # widget key raises DuplicateWidgetID, a StreamlitAPIException): contained here.
            log.exception("page %s of plugin %s failed", spec.url_path, plugin)
            st.error(
                f"页面“{spec.title}”运行出错，已记录日志。其他页面不受影响。请联系插件“{plugin}”的维护人员。"
            )
            with st.expander("技术细节（供开发人员）"):
                st.code("".join(traceback.format_exception(exc)), language=None)

    run.__name__ = "page_" + spec.url_path.replace("-", "_")
    return run


REFUSED = "无法打开页面“/{path}”：该页面不存在，或您没有访问权限。如需开通，请联系本部门负责人或{contact}。"


def _refusal(host: Host, identity: Identity, url_path: str, exists: bool, nav: dict[str, st.Page]):
    """A hidden page for a path this identity may not open (or that does not exist): a Chinese
    refusal, audited, instead of Streamlit's English "Page not found" dialog over the home page.
    Both cases read the same, so the refusal does not tell which pages exist; the audit does."""

    def run() -> None:
        host.audit.record(
            identity, "access.denied", f"page:{url_path}", "denied", how="typed URL", exists=exists
        )
        st.error(REFUSED.format(path=url_path, contact=_contact(host)))
        if "home" in nav:
            st.page_link(nav["home"], label="返回首页", icon=":material/home:")

    run.__name__ = "refused_" + url_path.replace("-", "_")
    return run


def _typed_path() -> str | None:
    """The page path in the browser's URL (one segment, base URL path removed), or None.

    Streamlit answers any path with the app and falls back to the default page when no page has
    that url_path; knowing the path lets the portal register a refusal for it instead."""
    url = st.context.url
    if not url:
        return None
    path = urlsplit(url).path.strip("/")
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    if base and (path == base or path.startswith(base + "/")):
        path = path[len(base):].strip("/")
    path = unquote(path)
    return path if path and "/" not in path else None


def _hidden_pages(run_for, known: set[str], registered: set[str]) -> list[st.Page]:
    """Hidden pages for every registered url path not in ``known`` and for a typed unknown one;
    ``run_for(url_path, exists)`` gives the page function."""
    paths = {p: True for p in sorted(registered - known)}
    typed = _typed_path()
    if typed and typed not in known and typed not in registered:
        paths[typed] = False
    return [
        st.Page(run_for(path, exists), title="无法打开", url_path=path, visibility="hidden")
        for path, exists in paths.items()
    ]


def navigation(host: Host, identity: Identity) -> dict[str, list[st.Page]]:
    nav: dict[str, st.Page] = {}  # filled below; page runners read it when they run
    sections: dict[str, list[st.Page]] = {}
    for section, specs in host.page_sections(identity).items():
        for spec in specs:
            nav[spec.url_path] = st.Page(
                _page_runner(host, identity, spec, host.registry.plugin_of_page(spec.url_path), nav),
                title=spec.title,
                icon=spec.icon,
                url_path=spec.url_path,
                default=spec.default,
            )
            sections.setdefault(section, []).append(nav[spec.url_path])
    hidden = _hidden_pages(
        lambda path, exists: _refusal(host, identity, path, exists, nav), set(nav), set(host.registry.pages)
    )
    if hidden:
        # a section of hidden pages never shows in the menu; Streamlit still resolves their paths
        sections.setdefault("", []).extend(hidden)
    return sections


def sidebar(host: Host, identity: Identity) -> None:
    with st.sidebar:
        st.markdown(f"**{identity.name}**")
        st.caption(" / ".join(identity.grant_labels))
        if st.button("退出登录", key="logout", icon=":material/logout:"):
            _sign_out(host, identity)
        problems = host.registry.problems()
        if problems and any(g.role == "platform_admin" for g in identity.grants):
            st.warning(f"{len(problems)} 个插件未能加载，详见“插件状态”。")


STARTUP_FAILED = "平台启动时出现内部错误，已记录日志。请稍后刷新页面；如持续出现，请联系平台管理员。"
INTERNAL_ERROR = "平台出现内部错误，已记录日志。请稍后刷新页面；如持续出现，请联系平台管理员。"


def main() -> None:
    st.set_page_config(
        page_title="慧治 · 大兴区智慧城市平台", page_icon=":material/account_balance:", layout="wide"
    )
    st.html(f"<style>{locale_css()}</style>")
    try:
        host = _host()
    except StoreUnavailable as exc:
        log.error("%s", exc)
        st.error(exc.user_message)
        st.stop()
    except PluginError as exc:
        log.error("%s", exc)
        st.error("严格模式下有插件加载失败，平台未启动。请平台管理员查看日志或运行 `huizhi plugins`。")
        st.code(str(exc), language=None)
        st.stop()
    except Exception:  # anything else at start-up: a Chinese message, the details in the log
        log.exception("the host could not be built")
        st.error(STARTUP_FAILED)
        st.stop()
    # The shell itself reads the database too (the sign-in audit, the menu): a database lost
    # mid-session must read as that, in Chinese, not as Streamlit's traceback page. Pages have
    # their own boundary (_page_runner); this one is for what runs around them.
    try:
        _shell(host)
    except (StoreUnavailable, DBAPIError) as exc:
        down = exc if isinstance(exc, StoreUnavailable) else StoreUnavailable(host.settings.database_url, exc)
        log.error("portal shell: %s", down)
        st.error(down.user_message)
    except Exception:
        log.exception("portal shell failed")
        st.error(INTERNAL_ERROR)


def _shell(host: Host) -> None:
    registered = set(host.registry.pages)
    if not st.user.is_logged_in:
        # Any page path (e.g. a bookmark) shows the sign-in page, not Streamlit's "Page not found".
        signin = [st.Page(lambda: signin_page(host), title="登录", url_path="signin", default=True)]
        aliases = _hidden_pages(lambda path, exists: lambda: signin_page(host), {"signin"}, registered)
        st.navigation(signin + aliases, position="hidden").run()
        return

    identity = identity_from_claims(
        st.user.to_dict(), host.settings.access, departments=host.settings.departments
    )
    if identity.is_expired():
        host.audit.record(identity, "signout", reason="id token expired")
        st.session_state.pop("huizhi_signin_recorded", None)
        st.logout()
        return
    _record_signin(host, identity)
    if not identity.has_access:
        no_access = [
            st.Page(lambda: no_access_page(host, identity), title="暂无权限", url_path="no-access", default=True)
        ]
        # A typed page path gets the same no-access page, and the attempt is audited.
        def refused(path: str, exists: bool):
            def run() -> None:
                host.audit.record(
                    identity, "access.denied", f"page:{path}", "denied", how="typed URL", exists=exists
                )
                no_access_page(host, identity)

            return run

        aliases = _hidden_pages(refused, {"no-access"}, registered)
        st.navigation(no_access + aliases, position="hidden").run()
        return

    sidebar(host, identity)
    # expanded: every page listed, no English "View 3 more" button under a long menu
    st.navigation(navigation(host, identity), expanded=True).run()


if __name__ == "__main__":  # Streamlit runs the entry script as __main__; tests import it
    main()
