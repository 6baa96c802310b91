"""`toolkit recipes [NAME]`."""

import click

from toolkit_deploy.cli import library_errors


@click.command()
@click.argument("name", required=False)
@library_errors
def recipes(name: str | None) -> None:
    """List the built-in recipes, or print recipe NAME in full (with every key you can --set)."""
    from toolkit.recipe import builtin_recipes, load_recipe

    found = builtin_recipes()
    if name is not None:
        load_recipe(name)  # validates, and gives the "unknown recipe" message
        click.echo(found[name].read_text(encoding="utf-8") if name in found else open(name).read())
        return
    for key in sorted(found):
        recipe = load_recipe(key)
        click.echo(f"{key:<16} {recipe.modality:<6} {recipe.description}")
